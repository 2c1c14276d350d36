"""Lesion boxes: the inclusive store convention and its one conversion to a half-open index."""

import numpy as np
import pytest

from breastflow.store.annotation_commit import LesionBox


@pytest.mark.parametrize(("slices", "expected_shape"), [
    ((2, 4), (3, 2, 4)),  # 3-D box: slices 2..4, rows 1..2, columns 3..6, all inclusive
    ((None, None), (2, 4)),  # projection box (mammography): rows and columns only
])
def test_array_index_covers_exactly_the_inclusive_bounds(slices, expected_shape):
    box = LesionBox(lesion_id=1, series="pre", start_row=1, end_row=2, start_column=3, end_column=6,
                    start_slice=slices[0], end_slice=slices[1])
    volume = np.zeros((8, 8, 8), dtype=np.uint8) if slices[0] is not None else np.zeros((8, 8), dtype=np.uint8)
    volume[box.array_index()] = 1
    assert volume[box.array_index()].shape == expected_shape
    filled = np.argwhere(volume)
    assert [tuple(int(v) for v in filled.min(0)), tuple(int(v) for v in filled.max(0))] == \
        [tuple(b[0] for b in box.bounds_zyx()), tuple(b[1] for b in box.bounds_zyx())]
