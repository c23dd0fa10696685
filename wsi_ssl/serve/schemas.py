"""Pydantic models of the request and response bodies, as published in the OpenAPI document.

Large responses are built with orjson rather than through these models (validating a million
floats would cost more than sending them); the models still describe their shape exactly, and
the tests check real responses against them.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from wsi_ssl.serve.config import NAME_PATTERN


class Health(BaseModel):
    status: str = Field(description="'ok' when the server answers")
    version: str
    api: str = Field(description="API version prefix, e.g. 'v1'")
    encoder: bool = Field(description="whether tiles can be embedded (an encoder is loaded)")
    models: int = Field(description="how many slide-level models are loaded")
    max_page_size: int = Field(description="the largest page (limit) of slides or tiles this server gives")
    max_tiles_per_request: int = Field(description="the most tiles one embed request may upload")


class CohortInfo(BaseModel):
    name: str
    n_slides: int


class CohortList(BaseModel):
    cohorts: list[CohortInfo]


class Page(BaseModel):
    offset: int = Field(description="index of the first item in this page")
    limit: int = Field(description="the page size asked for (or the default)")
    total: int = Field(description="how many items there are in all")
    next_offset: int | None = Field(description="offset of the next page; null on the last page")


class SlideList(Page):
    cohort: str
    slides: list[str] = Field(description="slide ids, sorted")


class SlideMeta(BaseModel):
    cohort: str
    slide_id: str
    n_tiles: int
    dim: int = Field(description="embedding dimension D")
    dtype: str = Field(description="dtype of the stored features (float32 or float16)")
    encoder: str | None
    encoder_sha256: str | None
    mpp: float | None
    tile_size: int | None
    attrs: dict[str, Any] = Field(description="all attributes of the feature file")


class AggregatorEmbedding(BaseModel):
    model: str
    embedding: list[float]


class SlideEmbedding(BaseModel):
    cohort: str
    slide_id: str
    n_tiles: int
    dim: int
    mean: list[float] | None = Field(description="mean of the tile embeddings; null for a slide without tiles")
    aggregator: AggregatorEmbedding | None = Field(description="the loaded aggregator's slide embedding, if any")


class TilePage(Page):
    cohort: str
    slide_id: str
    dim: int
    coords: list[list[int]] = Field(description="[n, 2] level-0 x, y of each tile's top-left corner")
    features: list[list[float]] = Field(description="[n, D] tile embeddings, same order as coords")


class TileEmbeddings(BaseModel):
    encoder: str
    encoder_sha256: str
    dim: int
    files: list[str] = Field(description="the uploaded file names, in the order of the embeddings")
    embeddings: list[list[float]]


class ModelInfo(BaseModel):
    name: str
    meta: dict[str, Any]


class ModelList(BaseModel):
    models: list[ModelInfo]


class PredictRequest(BaseModel):
    model_config = ConfigDict(extra="forbid", protected_namespaces=())

    model: str = Field(pattern=NAME_PATTERN, description="name of a loaded model (see GET /v1/models)")


class Prediction(BaseModel):
    model_config = ConfigDict(protected_namespaces=())

    cohort: str
    slide_id: str
    model: str
    outputs: dict[str, list[float]] = Field(description="each named output of the model, flattened")
