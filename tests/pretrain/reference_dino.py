# ruff: noqa
# mypy: ignore-errors
"""DINO's loss as its authors wrote it, to test the factorised ``wsi_ssl.pretrain.dino.DINOLoss``.

``DINOLoss`` below is a verbatim copy of the class of that name in ``main_dino.py`` of
facebookresearch/dino at commit 04c0ad957c9fd04cced6d703668bc049586d1d21:
https://github.com/facebookresearch/dino/blob/04c0ad957c9fd04cced6d703668bc049586d1d21/main_dino.py
(the class lightly's tests/loss/test_dino_loss.py copies too). Copyright (c) Facebook, Inc. and its
affiliates, licensed under the Apache License, Version 2.0.

The class is not edited. Its ``update_center`` all-reduces over ``torch.distributed``; the ``dist``
of this module stands in for a single process (all-reduce is the identity, the world size is 1)
instead, where lightly edits the class. Its teacher temperature is a schedule indexed by epoch:
``teacher_temp_schedule`` may be set to ``[t]`` and ``epoch=0`` passed for a temperature ``t``.
"""

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F


class _SingleProcess:
    """``torch.distributed`` as seen by one process."""

    @staticmethod
    def all_reduce(tensor):
        return tensor

    @staticmethod
    def get_world_size():
        return 1


dist = _SingleProcess()


# fmt: off
# ---- verbatim from facebookresearch/dino@04c0ad957c9fd04cced6d703668bc049586d1d21 main_dino.py ----
class DINOLoss(nn.Module):
    def __init__(self, out_dim, ncrops, warmup_teacher_temp, teacher_temp,
                 warmup_teacher_temp_epochs, nepochs, student_temp=0.1,
                 center_momentum=0.9):
        super().__init__()
        self.student_temp = student_temp
        self.center_momentum = center_momentum
        self.ncrops = ncrops
        self.register_buffer("center", torch.zeros(1, out_dim))
        # we apply a warm up for the teacher temperature because
        # a too high temperature makes the training instable at the beginning
        self.teacher_temp_schedule = np.concatenate((
            np.linspace(warmup_teacher_temp,
                        teacher_temp, warmup_teacher_temp_epochs),
            np.ones(nepochs - warmup_teacher_temp_epochs) * teacher_temp
        ))

    def forward(self, student_output, teacher_output, epoch):
        """
        Cross-entropy between softmax outputs of the teacher and student networks.
        """
        student_out = student_output / self.student_temp
        student_out = student_out.chunk(self.ncrops)

        # teacher centering and sharpening
        temp = self.teacher_temp_schedule[epoch]
        teacher_out = F.softmax((teacher_output - self.center) / temp, dim=-1)
        teacher_out = teacher_out.detach().chunk(2)

        total_loss = 0
        n_loss_terms = 0
        for iq, q in enumerate(teacher_out):
            for v in range(len(student_out)):
                if v == iq:
                    # we skip cases where student and teacher operate on the same view
                    continue
                loss = torch.sum(-q * F.log_softmax(student_out[v], dim=-1), dim=-1)
                total_loss += loss.mean()
                n_loss_terms += 1
        total_loss /= n_loss_terms
        self.update_center(teacher_output)
        return total_loss

    @torch.no_grad()
    def update_center(self, teacher_output):
        """
        Update center used for teacher output.
        """
        batch_center = torch.sum(teacher_output, dim=0, keepdim=True)
        dist.all_reduce(batch_center)
        batch_center = batch_center / (len(teacher_output) * dist.get_world_size())

        # ema update
        self.center = self.center * self.center_momentum + batch_center * (1 - self.center_momentum)
# ---- end of the verbatim copy ----
# fmt: on
