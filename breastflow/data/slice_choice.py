"""Which axial slices of a study are read (paper 003 sec. 3.1): one rule for datasets and selections.

``ALL``: every axial slice (the paper's single-phase model). ``LESION``: the
slices of each lesion box plus a margin either side (the paper's multi-phase
model: "5 % before the first and 5 % after the last tumour-containing slice").
The margin is ``ceil(margin * n)`` slices, with ``n`` the box's extent in
slices (``BOX_EXTENT``, default) or the volume's slice count
(``VOLUME_DEPTH``, what store selections use), clipped to the volume.
``EVERY``: every k-th slice (``0, k, 2k ...``), for evaluation selections
(``slices=every&every=k``); the training datasets take ``ALL`` or ``LESION``.
The values are the ``slices=`` words of the selection syntax and of dataset specs.
Boxes are inclusive and 0-based (the store's convention, see
:class:`breastflow.store.annotation_commit.LesionBox`).
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from enum import Enum

from breastflow.store.annotation_commit import LesionBox


class SliceChoice(str, Enum):
    """Axial slices used per study."""

    ALL = "all"
    LESION = "lesion"
    EVERY = "every"


class MarginBasis(str, Enum):
    """What the lesion margin fraction is a fraction of."""

    BOX_EXTENT = "box-extent"
    VOLUME_DEPTH = "volume-depth"


def lesion_slices(boxes: Iterable[LesionBox], z: int, margin: float,
                  basis: MarginBasis = MarginBasis.BOX_EXTENT) -> list[int]:
    """Sorted slice indices covered by the boxes plus their margins.

    Args:
        boxes: lesion boxes on the series' grid (projection boxes without slices are ignored).
        z: slices in the volume; margin: fraction (e.g. 0.05); basis: see :class:`MarginBasis`.

    Returns:
        Sorted distinct indices in ``[0, z)`` (empty for a study without 3-D boxes).
    """
    picked: set[int] = set()
    for box in boxes:
        if box.start_slice is None or box.end_slice is None:
            continue
        lo, hi = box.start_slice, min(box.end_slice, z - 1)
        extent = hi - lo + 1 if basis is MarginBasis.BOX_EXTENT else z
        pad = math.ceil(margin * extent - 1e-9)  # e.g. 0.07 * 100 is 7.000000000000001
        picked.update(range(max(0, lo - pad), min(z - 1, hi + pad) + 1))
    return sorted(picked)
