"""The interface of a pretraining method: what ``PretrainModule`` asks of DINO, MAE or a new one.

``PretrainModule`` owns what every method shares: the backbone (``module.student``), the
optimiser, the LR and weight-decay schedules, the NaN guard and the logging. A method adds its
own networks and losses to the module and computes the losses of one step.

The method attaches its parts to the module as attributes (``build``), not to itself: the
attribute names are the checkpoint's state-dict keys (``student_head.*``, ``teacher.*``,
``mae.decoder.*``), so checkpoints written before methods were classes still load, and a method
object stays plain Python (no parameters of its own, nothing to save). Every hook therefore
takes the module.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from typing import TYPE_CHECKING, ClassVar

import torch
from torch import nn

if TYPE_CHECKING:
    from wsi_ssl.pretrain.config import PretrainConfig
    from wsi_ssl.pretrain.module import PretrainModule


class PretrainMethod(ABC):
    """One self-supervised objective around the module's backbone ``module.student``."""

    name: ClassVar[str]

    def __init__(self, cfg: PretrainConfig) -> None:
        self.cfg = cfg

    @abstractmethod
    def build(self, module: PretrainModule) -> None:
        """Attach this method's networks, losses and view makers to ``module`` (called once, from
        its ``__init__``, after ``module.student`` exists). Attribute names become checkpoint keys:
        never rename one, and keep the order of assignment (it orders the optimiser's parameters)."""

    @abstractmethod
    def losses(self, module: PretrainModule, tiles: torch.Tensor) -> dict[str, torch.Tensor]:
        """The losses of one training step on a uint8 batch ``[B, 3, T, T]`` on the module's device.

        ``"loss"`` is what is minimised; every other entry is logged as ``train/<name>``."""

    @abstractmethod
    def encoder(self, module: PretrainModule) -> nn.Module:
        """The backbone ``wsi-ssl export`` writes."""

    def backbones(self, module: PretrainModule) -> dict[str, nn.Module]:
        """The networks the monitor measures (RankMe, kNN), by the name its metrics carry."""
        return {"student": module.student}

    def on_train_mode(self, module: PretrainModule) -> None:  # noqa: B027 (an optional hook: doing nothing is the default)
        """After ``module.train()``: put networks that never train (an EMA teacher) back in eval."""

    def on_after_backward(self, module: PretrainModule, step: int) -> None:  # noqa: B027 (an optional hook: doing nothing is the default)
        """After the backward of ``step``: edit gradients before the optimiser sees them."""

    def on_optimizer_step(self, module: PretrainModule, step: int) -> None:  # noqa: B027 (an optional hook: doing nothing is the default)
        """After the optimiser's update of ``step``: EMA targets and the like."""
