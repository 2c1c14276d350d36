"""An nnU-Net-style plan from the data: target spacing, patch size, and the DynUNet's kernels and strides.

nnU-Net (Isensee et al. 2021, *Nature Methods* 18:203) configures its 3D
full-resolution U-Net from the dataset "fingerprint"; this module does the
same for MONAI's :class:`monai.networks.nets.DynUNet`, following

* **target spacing**: the median spacing of the training cases; when the
  coarsest axis is more than 3x coarser than the others *and* has more than 3x
  fewer voxels, its 10th percentile instead (nnU-Net's
  ``ExperimentPlanner.determine_fullres_target_spacing``);
* **patch size**: the median shape at the target spacing, shrunk along the axis
  of largest physical extent until it fits a voxel budget (nnU-Net shrinks
  until the network fits GPU memory; the budget stands in for that), then
  rounded up to a multiple of the total downsampling per axis;
* **kernels and strides**: nnU-Net's ``get_pool_and_conv_props`` rule as
  written in MONAI's DynUNet tutorial (``get_kernels_strides``): an axis is
  pooled (stride 2) while its spacing is at most twice the finest spacing and
  its feature map stays >= 4 voxels; its kernel is 3 where the spacing ratio is
  <= 2, else 1 (anisotropic axes are convolved in-plane first);
* **filters**: 32 doubling per level, capped at 320 (nnU-Net 3D).

``quick=True`` gives a reduced plan (small patch, 8 filters doubling to 64, at
most 3 poolings) for CPU demos and tests.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from pydantic import BaseModel, ConfigDict

from breastflow.segmentation.cases import SegmentationCase
from breastflow.segmentation.volume_ops import resampled_shape

#: nnU-Net's anisotropy threshold (ratio of spacings and of voxel counts).
ANISOTROPY = 3.0
#: Smallest feature-map edge nnU-Net pools down to.
MIN_FEATURE = 4


class PlanBudget(BaseModel):
    """Limits of a plan (full nnU-Net-like, or ``quick``).

    Attributes:
        max_patch_voxels: the patch's voxel budget; base_filters, max_filters: first level's
            filters and the cap; max_pools: poolings per axis at most.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    max_patch_voxels: int
    base_filters: int
    max_filters: int
    max_pools: int


FULL = PlanBudget(max_patch_voxels=128 ** 3, base_filters=32, max_filters=320, max_pools=5)
QUICK = PlanBudget(max_patch_voxels=16 * 32 * 32, base_filters=8, max_filters=64, max_pools=3)


class SegmentationPlan(BaseModel):
    """The network and data configuration of a segmentation experiment (saved beside it).

    Attributes:
        target_spacing: ``(dz, dy, dx)`` mm every case is resampled to.
        median_shape: median ``(Z, Y, X)`` of the training cases at the target spacing.
        patch_size: ``(Z, Y, X)`` training patch.
        kernel_size, strides: per level, ``[kz, ky, kx]`` (``strides[0]`` is ``[1, 1, 1]``).
        filters: per level.
        deep_supervision, deep_supr_num: DynUNet deep-supervision heads.
        quick: the reduced configuration.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    target_spacing: tuple[float, float, float]
    median_shape: tuple[int, int, int]
    patch_size: tuple[int, int, int]
    kernel_size: tuple[tuple[int, int, int], ...]
    strides: tuple[tuple[int, int, int], ...]
    filters: tuple[int, ...]
    deep_supervision: bool
    deep_supr_num: int
    quick: bool = False

    def dynunet_kwargs(self, in_channels: int = 1, out_channels: int = 2) -> dict:
        """Keyword arguments of :class:`monai.networks.nets.DynUNet` (3-D, instance norm, leaky ReLU)."""
        return {"spatial_dims": 3, "in_channels": in_channels, "out_channels": out_channels,
                "kernel_size": [list(k) for k in self.kernel_size], "strides": [list(s) for s in self.strides],
                "upsample_kernel_size": [list(s) for s in self.strides[1:]], "filters": list(self.filters),
                "deep_supervision": self.deep_supervision, "deep_supr_num": self.deep_supr_num,
                "res_block": False}


def target_spacing(spacings: Sequence[Sequence[float]], shapes: Sequence[Sequence[int]]) -> tuple[float, float, float]:
    """nnU-Net's full-resolution target spacing: the median, with its anisotropy exception.

    Args:
        spacings: ``(dz, dy, dx)`` of every training case; shapes: their ``(Z, Y, X)``.

    Raises:
        ValueError: no cases, or spacings and shapes of different lengths.
    """
    if not spacings or len(spacings) != len(shapes):
        raise ValueError(f"need one spacing and one shape per case, got {len(spacings)} and {len(shapes)}")
    all_spacings = np.asarray(spacings, dtype=np.float64)
    target = np.percentile(all_spacings, 50, axis=0)
    sizes = np.percentile(np.asarray(shapes, dtype=np.float64), 50, axis=0)
    worst = int(np.argmax(target))
    others = [a for a in range(3) if a != worst]
    aniso_spacing = target[worst] > ANISOTROPY * max(target[others])
    aniso_voxels = sizes[worst] * ANISOTROPY < min(sizes[others])
    if aniso_spacing and aniso_voxels:
        low = float(np.percentile(all_spacings[:, worst], 10))
        target[worst] = low if low >= max(target[others]) else max(target[others]) + 1e-5
    return tuple(float(v) for v in target)  # type: ignore[return-value]


def kernels_strides(patch: Sequence[int], spacing: Sequence[float], max_pools: int = 5
                    ) -> tuple[list[list[int]], list[list[int]]]:
    """DynUNet kernel sizes and strides of nnU-Net's rule (MONAI DynUNet tutorial ``get_kernels_strides``).

    Args:
        patch: ``(Z, Y, X)`` patch size; spacing: its voxel size; max_pools: levels of pooling at most.

    Returns:
        ``(kernels, strides)``, one ``[kz, ky, kx]`` per level; ``strides[0] == [1, 1, 1]``.
    """
    sizes, spacings = [float(n) for n in patch], [float(s) for s in spacing]
    kernels: list[list[int]] = []
    strides: list[list[int]] = [[1, 1, 1]]
    while len(strides) <= max_pools:
        ratio = [s / min(spacings) for s in spacings]
        stride = [2 if r <= 2 and n / 2 >= MIN_FEATURE else 1 for r, n in zip(ratio, sizes, strict=True)]
        if all(s == 1 for s in stride):
            break
        kernels.append([3 if r <= 2 else 1 for r in ratio])
        strides.append(stride)
        sizes = [n / s for n, s in zip(sizes, stride, strict=True)]
        spacings = [sp * s for sp, s in zip(spacings, stride, strict=True)]
    kernels.append([3, 3, 3])
    return kernels, strides


def patch_size(median: Sequence[int], spacing: Sequence[float], max_voxels: int) -> tuple[int, int, int]:
    """The median shape shrunk (largest physical extent first, 10 % a step) to ``max_voxels`` voxels."""
    patch = [max(1, int(n)) for n in median]
    while int(np.prod(patch)) > max_voxels:
        extents = [n * s for n, s in zip(patch, spacing, strict=True)]
        axis = int(np.argmax(extents))
        patch[axis] = max(1, min(patch[axis] - 1, int(patch[axis] * 0.9)))
    return tuple(patch)  # type: ignore[return-value]


def plan_from_shapes(spacings: Sequence[Sequence[float]], shapes: Sequence[Sequence[int]],
                     quick: bool = False) -> SegmentationPlan:
    """A plan from the training cases' native spacings and (cropped) shapes.

    Raises:
        ValueError: no cases (see :func:`target_spacing`).
    """
    budget = QUICK if quick else FULL
    target = target_spacing(spacings, shapes)
    resampled = [resampled_shape(tuple(shape), tuple(sp), target) for sp, shape in zip(spacings, shapes, strict=True)]
    median = tuple(int(round(v)) for v in np.median(np.asarray(resampled), axis=0))
    patch = patch_size(median, target, budget.max_patch_voxels)
    kernels, strides = kernels_strides(patch, target, budget.max_pools)
    divisor = np.prod(np.asarray(strides), axis=0)
    patch = tuple(int(-(-p // d) * d) for p, d in zip(patch, divisor, strict=True))  # round up to a multiple
    filters = tuple(min(budget.base_filters * 2 ** i, budget.max_filters) for i in range(len(strides)))
    deep_supr_num = min(2, len(strides) - 2)
    return SegmentationPlan(
        target_spacing=target, median_shape=median, patch_size=patch,  # type: ignore[arg-type]
        kernel_size=tuple(tuple(k) for k in kernels), strides=tuple(tuple(s) for s in strides),  # type: ignore[arg-type]
        filters=filters, deep_supervision=deep_supr_num >= 1, deep_supr_num=max(1, deep_supr_num), quick=quick)


def plan_from_cases(cases: Sequence[SegmentationCase], quick: bool = False, crop: bool = True) -> SegmentationPlan:
    """A plan from the catalog geometry of the training cases (no volume is read).

    Args:
        cases: the training (cross-validation pool) cases.
        quick: the reduced configuration; crop: the single-breast crop halves X.

    Raises:
        ValueError: no cases.
    """
    if not cases:
        raise ValueError("cannot plan a segmentation network without training cases")
    shapes = [(c.shape[0], c.shape[1], c.shape[2] - c.shape[2] // 2 if crop else c.shape[2]) for c in cases]
    return plan_from_shapes([c.spacing for c in cases], shapes, quick)
