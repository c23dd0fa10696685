"""A small client for ``wsi-ssl serve``, for analysts' notebooks: answers come back as numpy arrays.

    from wsi_ssl.client import Client  # or wsi_ssl.serve.client
    api = Client("http://127.0.0.1:8000", key="wsk_...")
    api.slides("tcga_brca")                         # ['TCGA-A1-...', ...]
    feats, coords = api.tile_embeddings("tcga_brca", "TCGA-A1-...")   # [N, D], [N, 2]
    mean = api.slide_embedding("tcga_brca", "TCGA-A1-...")            # [D]
    emb = api.embed_tiles(["tile1.png", "tile2.jpg"])                 # [2, D]

Tile pages travel as ``.npy`` (about 3x smaller than JSON and exact in the file's dtype) and
are fetched page by page; errors raise :class:`ApiError` with the server's message. A 503 with
``Retry-After`` (a feature file being rewritten on the server) is retried after that delay, up to
``busy_retries`` times.
"""

from __future__ import annotations

import io
import time
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

import httpx
import numpy as np

NPY_MEDIA = "application/x-npy"


class ApiError(RuntimeError):
    """The server answered with an error; ``status`` and ``detail`` are what it said."""

    def __init__(self, status: int, error: str, detail: str) -> None:
        super().__init__(f"HTTP {status} {error}: {detail}")
        self.status = status
        self.error = error
        self.detail = detail


class Client:
    """One study's connection to the embeddings API. Use as a context manager or call ``close``."""

    def __init__(
        self,
        base_url: str,
        key: str,
        timeout: float = 60.0,
        transport: httpx.BaseTransport | None = None,
        busy_retries: int = 3,
    ) -> None:
        self._http = httpx.Client(
            base_url=base_url.rstrip("/") + "/v1", headers={"X-API-Key": key}, timeout=timeout, transport=transport
        )
        self._max_page: int | None = None
        self.busy_retries = busy_retries

    def _page_size(self, page_size: int | None) -> int:
        """The page size to ask for: the caller's, else the server's maximum (fewest round trips)."""
        if page_size is not None:
            return page_size
        if self._max_page is None:
            self._max_page = int(self.health()["max_page_size"])
        return self._max_page

    def __enter__(self) -> Client:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        self._http.close()

    def _request(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        r = self._http.request(method, path, **kwargs)
        for _ in range(self.busy_retries):
            wait = r.headers.get("Retry-After", "")
            if r.status_code != 503 or not wait.isdigit():
                break
            time.sleep(min(int(wait), 30))
            r = self._http.request(method, path, **kwargs)
        if r.status_code >= 400:
            try:
                body = r.json()
                raise ApiError(r.status_code, str(body.get("error")), str(body.get("detail")))
            except ValueError:
                raise ApiError(r.status_code, "http_error", r.text[:500]) from None
        return r

    def _json(self, method: str, path: str, **kwargs: Any) -> Any:
        return self._request(method, path, **kwargs).json()

    # ---- metadata ---------------------------------------------------------------------------

    def health(self) -> dict[str, Any]:
        return self._json("GET", "/health")  # type: ignore[no-any-return]

    def cohorts(self) -> dict[str, int]:
        """The cohorts this key sees, with their slide counts."""
        return {c["name"]: c["n_slides"] for c in self._json("GET", "/cohorts")["cohorts"]}

    def slides(self, cohort: str, page_size: int | None = None) -> list[str]:
        """All slide ids of a cohort (fetched page by page; default page: the server's maximum)."""
        ids: list[str] = []
        offset: int | None = 0
        while offset is not None:
            page = self._json(
                "GET", f"/cohorts/{cohort}/slides", params={"offset": offset, "limit": self._page_size(page_size)}
            )
            ids.extend(page["slides"])
            offset = page["next_offset"]
        return ids

    def slide(self, cohort: str, slide_id: str) -> dict[str, Any]:
        """One slide's metadata: n_tiles, dim, dtype, encoder, mpp, tile_size and the file's attrs."""
        return self._json("GET", f"/cohorts/{cohort}/slides/{slide_id}")  # type: ignore[no-any-return]

    def models(self) -> dict[str, dict[str, Any]]:
        return {m["name"]: m["meta"] for m in self._json("GET", "/models")["models"]}

    # ---- embeddings -------------------------------------------------------------------------

    def slide_embedding(self, cohort: str, slide_id: str, kind: str = "mean") -> np.ndarray | None:
        """The slide-level embedding [D]: ``kind="mean"`` (of the tiles) or ``"aggregator"`` (the
        loaded aggregator model's); None when the slide has no tiles or no aggregator is loaded."""
        if kind not in ("mean", "aggregator"):
            raise ValueError(f"kind must be 'mean' or 'aggregator', got {kind!r}")
        body = self._json("GET", f"/cohorts/{cohort}/slides/{slide_id}/embedding")
        value = body["mean"] if kind == "mean" else (body["aggregator"] or {}).get("embedding")
        return None if value is None else np.asarray(value, dtype=np.float32)

    def tile_pages(
        self, cohort: str, slide_id: str, page_size: int | None = None
    ) -> Iterator[tuple[np.ndarray, np.ndarray]]:
        """Yield ``(features [n, D], coords [n, 2])`` page by page, for slides too big to hold at once."""
        offset: int | None = 0
        while offset is not None:
            r = self._request(
                "GET",
                f"/cohorts/{cohort}/slides/{slide_id}/tiles",
                params={"offset": offset, "limit": self._page_size(page_size)},
                headers={"Accept": NPY_MEDIA},
            )
            records = np.load(io.BytesIO(r.content), allow_pickle=False)
            yield records["features"], records["coords"]
            nxt = r.headers.get("X-Next-Offset", "")
            offset = int(nxt) if nxt else None

    def tile_embeddings(
        self, cohort: str, slide_id: str, page_size: int | None = None
    ) -> tuple[np.ndarray, np.ndarray]:
        """All of a slide's tile embeddings ``[N, D]`` (the file's dtype) and coords ``[N, 2]`` int64."""
        pages = list(self.tile_pages(cohort, slide_id, page_size))
        return np.concatenate([p[0] for p in pages]), np.concatenate([p[1] for p in pages])

    def embed_tiles(self, tiles: Iterable[str | Path | bytes]) -> np.ndarray:
        """Embed PNG/JPEG tiles (paths or encoded bytes) with the server's encoder: ``[n, D]`` float32."""
        files = []
        for i, tile in enumerate(tiles):
            if isinstance(tile, (str, Path)):
                files.append(("files", (Path(tile).name, Path(tile).read_bytes(), "application/octet-stream")))
            else:
                files.append(("files", (f"tile{i}", bytes(tile), "application/octet-stream")))
        r = self._request("POST", "/embed", files=files, headers={"Accept": NPY_MEDIA})
        return np.load(io.BytesIO(r.content), allow_pickle=False)  # type: ignore[no-any-return]

    def predict(self, cohort: str, slide_id: str, model: str) -> dict[str, np.ndarray]:
        """A loaded MIL model's outputs on a cached slide, each as a float32 array."""
        body = self._json("POST", f"/cohorts/{cohort}/slides/{slide_id}/predict", json={"model": model})
        return {name: np.asarray(values, dtype=np.float32) for name, values in body["outputs"].items()}
