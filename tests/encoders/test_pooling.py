"""The named poolings on hand-built token sequences: which rows are pooled is the whole point."""

from __future__ import annotations

import pytest
import torch

from wsi_ssl.encoders.pooling import POOLINGS, WIDTH_FACTOR, pool


def tokens(num_prefix: int, num_patches: int, dim: int = 3) -> torch.Tensor:
    """Row r of every token holds the value r, so a pooled value names the rows it came from."""
    rows = torch.arange(num_prefix + num_patches, dtype=torch.float32)
    return rows.view(1, -1, 1).expand(2, -1, dim).clone()


def test_cls_is_row_zero() -> None:
    out = pool("cls", tokens(5, 4), 5)
    assert out.shape == (2, 3)
    assert torch.equal(out, torch.zeros(2, 3))


def test_cls_plus_mean_patch_excludes_registers() -> None:
    # Virchow2: 1 class token + 4 registers (rows 1-4) + patches at rows 5..8, mean 6.5.
    out = pool("cls+mean_patch", tokens(5, 4), 5)
    assert out.shape == (2, 6)
    assert torch.equal(out[:, :3], torch.zeros(2, 3))
    assert torch.allclose(out[:, 3:], torch.full((2, 3), 6.5))
    # Counting the registers as patches (the classic slip, output[:, 1:]) would give 4.5 instead.
    assert not torch.allclose(out[:, 3:], torch.full((2, 3), 4.5))


def test_cls_plus_mean_patch_without_registers() -> None:
    # Virchow (v1): 1 class token, patches at rows 1..4, mean 2.5.
    out = pool("cls+mean_patch", tokens(1, 4), 1)
    assert torch.allclose(out[:, 3:], torch.full((2, 3), 2.5))


def test_mean_patch_of_a_prefix_free_map() -> None:
    out = pool("mean_patch", tokens(0, 4), 0)
    assert torch.allclose(out, torch.full((2, 3), 1.5))


def test_width_factor_matches_output() -> None:
    for name in set(POOLINGS) - {"model"}:
        assert pool(name, tokens(1, 4), 1).shape[-1] == 3 * WIDTH_FACTOR[name]


def test_model_pooling_passes_a_pooled_output_and_refuses_tokens() -> None:
    pooled = torch.randn(2, 5)
    assert torch.equal(pool("model", pooled, 0), pooled)
    with pytest.raises(ValueError, match="pooled output"):
        pool("model", tokens(1, 4), 1)


def test_bad_cases_are_errors() -> None:
    with pytest.raises(ValueError, match="no patch tokens"):
        pool("mean_patch", tokens(5, 0), 5)
    with pytest.raises(ValueError, match="class token"):
        pool("cls", tokens(0, 4), 0)
    with pytest.raises(ValueError, match="unknown pooling"):
        pool("gem", tokens(1, 4), 1)
