"""nnU-Net-style plans from shapes and spacings, and the DynUNet they configure."""

from __future__ import annotations

import numpy as np
import pytest

from breastflow.segmentation.plan import kernels_strides, patch_size, plan_from_shapes, target_spacing


def test_target_spacing_is_the_median() -> None:
    spacings = [(2.0, 0.7, 0.7), (1.0, 0.8, 0.8), (1.5, 0.9, 0.9)]
    shapes = [(100, 300, 300)] * 3
    assert target_spacing(spacings, shapes) == pytest.approx((1.5, 0.8, 0.8))


def test_target_spacing_anisotropy_takes_the_10th_percentile() -> None:
    # Z 4-5 mm vs 1 mm in-plane (> 3x) and few slices (20 * 3 < 200): nnU-Net takes the 10th percentile of Z
    spacings = [(4.0 + 0.1 * i, 1.0, 1.0) for i in range(11)]
    shapes = [(20, 200, 200)] * 11
    target = target_spacing(spacings, shapes)
    assert target[0] == pytest.approx(np.percentile([s[0] for s in spacings], 10))
    assert target[1:] == pytest.approx((1.0, 1.0))
    # many slices: no exception, the median
    assert target_spacing(spacings, [(200, 200, 200)] * 11)[0] == pytest.approx(4.5)
    with pytest.raises(ValueError, match="one spacing and one shape"):
        target_spacing([], [])


def test_kernels_strides_follow_nnunet_rule() -> None:
    # isotropic 64^3: pool all axes while the map stays >= 4 (64 -> 32 -> 16 -> 8 -> 4), 5 levels
    kernels, strides = kernels_strides((64, 64, 64), (1.0, 1.0, 1.0))
    assert strides == [[1, 1, 1]] + [[2, 2, 2]] * 4
    assert kernels == [[3, 3, 3]] * 5
    # anisotropic Z (3 mm vs 1 mm): Z not pooled nor convolved until the in-plane spacing catches up
    kernels, strides = kernels_strides((16, 64, 64), (3.0, 1.0, 1.0))
    assert strides[1] == [1, 2, 2] and kernels[0] == [1, 3, 3]
    assert strides[2] == [2, 2, 2] and kernels[1] == [3, 3, 3]  # in-plane 2 mm: ratio 1.5 <= 2
    assert len(kernels) == len(strides)
    assert kernels_strides((64, 64, 64), (1.0, 1.0, 1.0), max_pools=2)[1] == [[1, 1, 1], [2, 2, 2], [2, 2, 2]]


def test_patch_size_fits_the_budget_shrinking_the_longest_extent() -> None:
    patch = patch_size((40, 400, 200), (2.0, 0.5, 0.5), max_voxels=64 ** 3)
    assert np.prod(patch) <= 64 ** 3
    assert patch[0] / 40 >= patch[1] / 400  # the longest extent (Y, 200 mm) was shrunk most
    extents = np.asarray(patch) * (2.0, 0.5, 0.5)
    assert extents.max() <= 1.25 * extents.min()
    assert patch_size((10, 10, 10), (1, 1, 1), 10 ** 3) == (10, 10, 10)


@pytest.mark.parametrize("quick", [False, True])
def test_plan_from_shapes_is_consistent(quick: bool) -> None:
    spacings = [(2.0, 0.75, 0.75), (2.2, 0.7, 0.7), (1.8, 0.8, 0.8)]
    shapes = [(80, 320, 160), (90, 300, 150), (70, 340, 170)]
    plan = plan_from_shapes(spacings, shapes, quick=quick)
    assert plan.target_spacing == pytest.approx((2.0, 0.75, 0.75))
    assert plan.median_shape == (80, 320, 160)
    divisor = np.prod(np.asarray(plan.strides), axis=0)
    assert all(p % d == 0 for p, d in zip(plan.patch_size, divisor, strict=True))
    assert len(plan.kernel_size) == len(plan.strides) == len(plan.filters)
    assert plan.filters[0] == (8 if quick else 32) and max(plan.filters) <= (64 if quick else 320)
    if quick:
        assert np.prod(plan.patch_size) <= 2 * 16 * 32 * 32 and len(plan.strides) <= 4
    else:
        assert np.prod(plan.patch_size) > np.prod(plan_from_shapes(spacings, shapes, quick=True).patch_size)


def test_quick_plan_builds_a_dynunet_that_maps_a_patch_to_a_patch() -> None:
    torch = pytest.importorskip("torch")
    from monai.networks.nets import DynUNet

    plan = plan_from_shapes([(2.0, 1.0, 1.0)] * 3, [(8, 24, 16), (10, 26, 16), (8, 24, 18)], quick=True)
    net = DynUNet(**plan.dynunet_kwargs(in_channels=1, out_channels=2)).eval()
    with torch.no_grad():
        out = net(torch.zeros(1, 1, *plan.patch_size))
    assert tuple(out.shape) == (1, 2, *plan.patch_size)
    net.train()
    out = net(torch.zeros(1, 1, *plan.patch_size))
    if plan.deep_supervision:  # training mode stacks the deep-supervision heads: (B, 1 + n, C, Z, Y, X)
        assert tuple(out.shape) == (1, 1 + plan.deep_supr_num, 2, *plan.patch_size)
