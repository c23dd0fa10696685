"""Level choice and grid geometry: a true MPP, never a magnification guess."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from wsi_ssl.slide.readers import LevelInfo
from wsi_ssl.tiling.grid import aligned_block, block_major_order, grid_positions, make_plan, to_level0


def levels(mpp0: float, n: int, w: int = 8000, h: int = 6000) -> list[LevelInfo]:
    return [LevelInfo(i, w >> i, h >> i, float(2**i), mpp0 * 2**i) for i in range(n)]


@pytest.mark.parametrize(
    "mpp0, target, level, native, read_size",
    [
        (0.25, 0.5, 1, True, 224),  # 40x scan, 20x tiles: level 1 natively
        (0.25, 1.0, 2, True, 224),
        (0.25, 0.6, 1, False, 269),  # between levels: read the finer one and shrink
        (0.499, 0.5, 0, True, 224),  # within 2%: native, no resize
        (0.5, 0.25, 0, False, 112),  # finer than the scan: level 0, upsampled
        (0.26, 0.5, 0, False, 431),  # level 1 (0.52) is coarser than 0.5*1.02: never read from it
    ],
)
def test_level_choice(mpp0: float, target: float, level: int, native: bool, read_size: int) -> None:
    plan = make_plan(levels(mpp0, 4), target, 224, 224, 0.02)
    assert (plan.level, plan.native, plan.read_size) == (level, native, read_size)
    assert plan.extent_level0 == pytest.approx(read_size * 2**level)


def test_grid_keeps_whole_tiles_and_overlap() -> None:
    plan = make_plan(levels(0.5, 1, 1000, 500), 0.5, 224, 200, 0.02)
    pos = grid_positions(plan, 1000, 500)
    assert pos[:, 0].max() + 224 <= 1000 and pos[:, 1].max() + 224 <= 500
    assert sorted(set(pos[:, 0].tolist())) == [0, 200, 400, 600]
    assert sorted(set(pos[:, 1].tolist())) == [0, 200]
    assert np.array_equal(to_level0(pos, plan), pos)


def test_level0_coords_scale_with_downsample() -> None:
    plan = make_plan(levels(0.25, 3), 0.5, 224, 224, 0.02)
    pos = grid_positions(plan, 4000, 3000)
    assert np.array_equal(to_level0(pos, plan), pos * 2)


def test_block_major_order_is_a_permutation_grouping_blocks() -> None:
    plan = make_plan(levels(0.5, 1), 0.5, 100, 100, 0.02)
    pos = grid_positions(plan, 1000, 1000)
    order = block_major_order(pos, plan, block=400)
    assert sorted(order.tolist()) == list(range(len(pos)))
    first16 = pos[order[:16]]
    assert first16[:, 0].max() < 400 and first16[:, 1].max() < 400


@pytest.mark.parametrize(
    ("block", "stride", "source", "expected"),
    [
        (2048, 224, 256, 1792),  # 8 tiles = 7 source tiles
        (2048, 224, 240, 3360),  # Aperio's 240-px tiles: 15 tiles = 14 source tiles
        (2048, 448, 256, 1792),
        (4096, 224, 256, 3584),
        (2048, 223, 256, 2048),  # lcm too large: keep the configured block
        (2048, 224, None, 2048),  # source tiling unknown
    ],
)
def test_aligned_block_puts_block_edges_on_source_tile_edges(
    block: int, stride: int, source: int | None, expected: int
) -> None:
    got = aligned_block(block, stride, source)
    assert got == expected
    if got != block:
        assert got % stride == 0 and got % source == 0  # type: ignore[operator]


def test_source_tile_size_of_real_svs(shared_data: Path) -> None:
    from wsi_ssl.slide.readers import open_slide

    with open_slide(shared_data / "wsi" / "CMU-1-Small-Region.svs") as slide:
        assert slide.source_tile_size(0) == 240
