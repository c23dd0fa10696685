"""Typed config for ``wsi-ssl mil``: task, aggregator, bags, training and evaluation.

Validated before any feature file is opened, so a typo in a key or an impossible combination
(a survival loss on a classification task, more folds than patients allow) stops the run with a
message naming the key rather than failing an hour into training.
"""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import Field, field_validator, model_validator

from wsi_ssl.config import StrictModel


class TaskConfig(StrictModel):
    """What is predicted and how it is scored during training."""

    kind: str = "classification"  # a registered task kind: wsi_ssl.mil.tasks (classification, regression, survival)
    label_column: str = "label"  # class column (classification) or numeric column (regression)
    classes: list[str] | None = None  # class order; sorted distinct labels when None
    class_weights: Literal["none", "balanced"] | list[float] = "none"
    standardize_target: bool = True  # regression: z-score with the training fold's mean/std
    survival_loss: Literal["cox", "discrete"] = "cox"
    ties: Literal["efron", "breslow"] = "efron"  # Cox partial likelihood tie handling
    cox_weighting: Literal["none", "balanced"] = "none"  # balanced: events and censored weigh alike
    n_bins: int = Field(4, ge=2, le=64)  # discrete-time survival: quantile bins of training event times

    @field_validator("kind")
    @classmethod
    def _known_kind(cls, kind: str) -> str:
        # imported here: the registry imports torch, and importing this module must not
        from wsi_ssl.mil.tasks.registry import get_task

        get_task(kind)  # ValueError naming the known kinds
        return kind

    @model_validator(mode="after")
    def _fits_kind(self) -> TaskConfig:
        from wsi_ssl.mil.tasks.registry import get_task

        get_task(self.kind).check_config(self)
        return self


class AggregatorConfig(StrictModel):
    """The MIL pooling; ``hidden_dim: 0`` skips the instance projection (a linear model on features).

    ``kind`` is any registered aggregator (``wsi_ssl/mil/aggregators/``, one module each): ``mean``,
    ``abmil`` (Ilse et al. 2018), ``dsmil`` (Li et al. 2021), ``transmil`` (Shao et al. 2021 as
    published: Nystrom attention, 2-D PPEG over the square-padded bag) and ``transformer`` (the
    same layout with exact attention and a 1-D positional conv; called ``transmil`` before the
    published model was added). Each kind checks the settings it needs.
    """

    kind: str = "abmil"
    gated: bool = True  # abmil: gated attention (Ilse et al. 2018)
    hidden_dim: int = Field(256, ge=0)
    attn_dim: int = Field(128, ge=1)
    dropout: float = Field(0.25, ge=0.0, lt=1.0)
    n_heads: int = Field(4, ge=1)  # transformer, transmil (the paper uses 8)
    n_layers: int = Field(2, ge=1)  # transformer, transmil (the paper: 2, with PPEG between them)

    @field_validator("kind")
    @classmethod
    def _known_kind(cls, kind: str) -> str:
        # imported here: the registry imports torch, and importing this module must not
        from wsi_ssl.mil.aggregators.registry import get_aggregator_entry

        get_aggregator_entry(kind)  # ValueError naming the known kinds
        return kind

    @model_validator(mode="after")
    def _fits_kind(self) -> AggregatorConfig:
        from wsi_ssl.mil.aggregators.registry import check_aggregator_config

        check_aggregator_config(self)
        return self


class DataConfig(StrictModel):
    """How slides become bags and bags become batches."""

    group_by: Literal["patient", "slide"] = "patient"  # patient: one bag of all the patient's tiles
    batch_size: int = Field(16, ge=1)
    max_instances_train: int | None = Field(8192, ge=1)  # subsample larger bags, training only
    normalize_features: bool = False  # z-score features with training-fold instance mean/std
    bucket_by_length: bool = True  # batch bags of similar size together so padding stays small
    # Where a fold's features live during training: device (uploaded once, in their stored dtype,
    # so steps copy nothing), host (copied each step from pinned memory), or auto (device when
    # they take at most 40% of the GPU's free memory). Irrelevant on a CPU.
    features_on_device: Literal["auto", "device", "host"] = "auto"
    # Clinical and molecular inputs (wsi_ssl.mil.clinical). Covariates: slide-table columns; one
    # whose values are not all numbers (or listed in ``categorical``) is one-hot encoded, numbers
    # are standardised with training-fold statistics. Omics: a per-patient table (patient_id +
    # one column per feature; CSV, parquet or h5). Missing values in both are masked, never imputed.
    covariates: list[str] = Field(default_factory=list)
    categorical: list[str] = Field(default_factory=list)
    omics: str | None = None
    omics_components: int = Field(0, ge=0)  # >0: PCA of the omics to this many components, fitted per training fold


class SearchConfig(StrictModel):
    """``train.search``: a nested grid search, run inside each outer training fold only.

    Every combination of the listed values (an empty list keeps the ``train``/``aggregator``
    setting) is scored by an inner K-fold CV split by patient inside the outer training fold; the
    best is refitted on that fold and recorded (``wsi_ssl.mil.search``). The outer test fold is
    never seen while choosing.
    """

    lr: list[Annotated[float, Field(gt=0)]] = Field(default_factory=list)
    weight_decay: list[Annotated[float, Field(ge=0)]] = Field(default_factory=list)
    dropout: list[Annotated[float, Field(ge=0.0, lt=1.0)]] = Field(default_factory=list)  # aggregator.dropout
    epochs: list[Annotated[int, Field(ge=1)]] = Field(default_factory=list)
    folds: int = Field(3, ge=2)  # inner folds, by patient
    # loss: mean held-out loss of the inner folds (lower wins); metric: mean of the task's
    # headline metric (AUROC, R2, C-index; higher wins)
    criterion: Literal["loss", "metric"] = "loss"
    max_candidates: int = Field(64, ge=1)  # a guard: the grid's size multiplies training time

    @model_validator(mode="after")
    def _a_real_grid(self) -> SearchConfig:
        grid: dict[str, list[float]] = {
            "lr": list(self.lr),
            "weight_decay": list(self.weight_decay),
            "dropout": list(self.dropout),
            "epochs": [float(e) for e in self.epochs],
        }
        if not any(grid.values()):
            raise ValueError("train.search lists no values: give at least one of lr, weight_decay, dropout, epochs")
        for name, values in grid.items():
            if len(set(values)) != len(values):
                raise ValueError(f"train.search.{name} lists a value twice: {values}")
        n = 1
        for values in grid.values():
            n *= max(len(values), 1)
        if n > self.max_candidates:
            raise ValueError(
                f"train.search has {n} combinations, more than train.search.max_candidates={self.max_candidates}"
            )
        return self


class TrainConfig(StrictModel):
    """Optimisation and early stopping (on the inner validation split of each training fold)."""

    epochs: int = Field(50, ge=1)
    lr: float = Field(2e-4, gt=0)
    weight_decay: float = Field(1e-4, ge=0)
    patience: int = Field(10, ge=1)  # epochs without validation-loss improvement before stopping
    val_fraction: float = Field(0.15, ge=0.0, lt=0.9)  # 0 disables early stopping (trains all epochs)
    seed: int = 0
    device: str = "auto"  # auto: cuda if available, else cpu
    num_threads: int | None = Field(None, ge=1)
    # How a batch's forward pass runs: batched (one padded pass), per_bag (bag by bag, same
    # outputs and one optimizer step per batch; faster on a CPU for large bags), or auto
    # (per_bag on a CPU when the batch's bags average >= per_bag_min_instances, else batched).
    bag_forward: Literal["auto", "batched", "per_bag"] = "auto"
    per_bag_min_instances: int = Field(256, ge=1)
    search: SearchConfig | None = None  # nested hyperparameter search (wsi_ssl.mil.search); None: fixed settings


class PooledLinearConfig(StrictModel):
    """The mean+max pooled linear baseline fitted beside every run (``wsi_ssl.mil.baselines``)."""

    enabled: bool = True
    c: float = Field(1.0, gt=0)  # logistic regression: inverse L2 strength (scikit-learn's C)
    alpha: float = Field(1.0, gt=0)  # ridge / Cox: L2 penalty on the standardised pooled features


class EvalConfig(StrictModel):
    """Cross-validation and reporting."""

    folds: int = Field(5, ge=2)
    bootstrap: int = Field(1000, ge=0)  # resamples for 95% confidence intervals (0: none)
    ci: float = Field(0.95, gt=0.0, lt=1.0)
    plots: bool = True
    heatmaps: int = Field(8, ge=0)  # slides to draw attention heatmaps for (attention models)
    top_tiles: int = Field(8, ge=0)
    # With covariates or omics: also fit covariates-only and histology-only models on the same
    # folds and write metrics.json's ``comparison`` (wsi_ssl.mil.comparison).
    compare: bool = True
    importance_repeats: int = Field(5, ge=0)  # permutation-importance shuffles per covariate and fold (0: none)
    pooled_linear: PooledLinearConfig = Field(default_factory=PooledLinearConfig)  # comparison.pooled_linear


class FusionConfig(StrictModel):
    """How the clinical/omics inputs meet the tiles (``wsi_ssl/mil/fusion/``, one module per kind).

    ``none`` (histology only), ``late`` (slide embedding + a small covariate/omics encoder),
    ``film`` (covariates scale and shift tile embeddings before attention), ``cross_attention``
    (covariate and omics tokens attend to the tiles and the tiles back). Written as a plain string
    (``fusion: late``) or a mapping.
    """

    kind: str = "none"
    hidden_dim: int = Field(32, ge=1)  # width of the covariate/omics encoder
    dropout: float = Field(0.1, ge=0.0, lt=1.0)
    # Training only: each bag's omics are hidden with this probability, so the learned
    # "omics missing" embedding is trained and a patient without omics gets a sound prediction.
    modality_dropout: float = Field(0.1, ge=0.0, lt=1.0)
    n_heads: int = Field(2, ge=1)  # cross_attention

    @field_validator("kind")
    @classmethod
    def _known_kind(cls, kind: str) -> str:
        from wsi_ssl.mil.fusion.registry import get_fusion_entry

        get_fusion_entry(kind)  # ValueError naming the known kinds
        return kind


class ModelConfig(StrictModel):
    fusion: FusionConfig = Field(default_factory=FusionConfig)

    @field_validator("fusion", mode="before")
    @classmethod
    def _shorthand(cls, value: object) -> object:
        return {"kind": value} if isinstance(value, str) else value


class MilConfig(StrictModel):
    # Factories, not instances: building a task or aggregator config consults its registry, which
    # imports torch, and importing this module must not.
    task: TaskConfig = Field(default_factory=TaskConfig)
    aggregator: AggregatorConfig = Field(default_factory=AggregatorConfig)
    data: DataConfig = DataConfig()
    train: TrainConfig = TrainConfig()
    eval: EvalConfig = EvalConfig()
    model: ModelConfig = Field(default_factory=ModelConfig)

    @model_validator(mode="after")
    def _fusion_has_inputs(self) -> MilConfig:
        from wsi_ssl.mil.fusion.registry import check_fusion_config

        check_fusion_config(self)
        return self
