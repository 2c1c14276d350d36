"""Segmentation cases and load_case on a tiny store: multifocal policy, sources, preprocessing, bad input."""

from __future__ import annotations

import numpy as np
import pytest
from segmentation_helpers import HIGH_BOX, LOW_BOX, SHAPE, build_segmentation_store

from breastflow.generate.synthetic import SyntheticSetError
from breastflow.segmentation.cases import (
    CaseSplit,
    NoMaskError,
    pool_cases,
    segmentation_cases,
)
from breastflow.segmentation.preprocess import (
    PreprocessConfig,
    SegmentationSource,
    load_case,
)
from breastflow.segmentation.volume_ops import Half


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> str:
    return build_segmentation_store(str(tmp_path_factory.mktemp("seg") / "store")).url


def test_cases_follow_the_paper_multifocal_policy(store: str) -> None:
    cases = {c.study: c for c in segmentation_cases(store)}
    assert "cv-multi" not in cases  # multifocal: never trained or validated on
    assert cases["ts-multi"].split is CaseSplit.TEST and cases["ts-multi"].n_lesions == 2  # kept for test
    assert "ts-multi" not in {c.study for c in segmentation_cases(store, multifocal_in_test=False)}
    pool = pool_cases(cases.values())
    assert {c.catalog_split for c in pool} == {"train", "val"}  # the CV pool is catalog train + val
    assert len(pool) == 7 and all(c.n_lesions == 1 for c in pool)
    assert {c.vendor for c in cases.values()} == {"ge", "siemens"}
    case = cases["cv-0"]
    assert case.spacing == (2.0, 1.0, 1.0) and case.shape == SHAPE and case.phases == ("pre", "post_1")
    assert not {c.patient for c in pool} & {c.patient for c in cases.values() if c.split is CaseSplit.TEST}


def test_test_splits_widen_the_test_set_and_shrink_the_pool(store: str) -> None:
    default = {c.study: c for c in segmentation_cases(store)}
    wide = {c.study: c for c in segmentation_cases(store, test_splits=("val", "test"))}
    val_studies = {s for s, c in default.items() if c.catalog_split == "val"}
    assert val_studies  # the tiny store has val patients in the pool by default
    assert all(wide[s].split is CaseSplit.TEST for s in val_studies)
    assert {c.catalog_split for c in pool_cases(wide.values())} == {"train"}
    assert not {c.patient for c in pool_cases(wide.values())} & {
        c.patient for c in wide.values() if c.split is CaseSplit.TEST}
    for bad in ((), ("holdout",), ("train", "val", "test")):
        with pytest.raises(ValueError, match="test splits"):
            segmentation_cases(store, test_splits=bad)


def test_a_store_without_masks_is_a_clear_error(tmp_path) -> None:
    import sys
    from pathlib import Path

    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "data"))
    from data_store_builder import PhantomStudy, build_store

    loc = build_store(str(tmp_path / "bare"), [PhantomStudy("s1", "pat-0", shape=(4, 8, 8), phases=("pre",), box=None)])
    with pytest.raises(NoMaskError, match="no study with a committed lesion mask"):
        segmentation_cases(loc.url)
    with pytest.raises(NoMaskError, match="empty catalog"):
        segmentation_cases(str(tmp_path / "nothing"))


@pytest.mark.parametrize("source", list(SegmentationSource))
def test_load_case_reads_each_source_on_the_mask_grid(store: str, source: SegmentationSource) -> None:
    case = next(c for c in segmentation_cases(store) if c.study == "cv-0")  # HIGH_BOX
    config = PreprocessConfig(synthetic="syn", n4=False, zscore=False)
    image, mask, meta = load_case(store, case, source, config)
    assert image.shape == mask.shape == (SHAPE[0], SHAPE[1], SHAPE[2] // 2)
    assert meta.half is Half.HIGH_X and meta.source is source
    z0, z1, y0, y1, x0, x1 = HIGH_BOX
    expected = np.zeros(SHAPE, np.uint8)
    expected[z0:z1 + 1, y0:y1 + 1, x0:x1 + 1] = 1
    assert np.array_equal(mask, expected[:, :, SHAPE[2] // 2:])
    assert meta.geometry.origin[0] == pytest.approx(SHAPE[2] // 2 * 1.0)  # identity direction, dx 1 mm
    lesion, tissue = float(image[mask > 0].mean()), float(image[(mask == 0) & (image > 100)].mean())
    if source is SegmentationSource.REAL_PRE:
        assert lesion == pytest.approx(tissue, rel=0.1)  # no enhancement before contrast
    else:
        assert lesion > 1.2 * tissue  # the lesion enhances (real and synthetic post)


def test_synthetic_source_is_the_synthetic_series(store: str) -> None:
    case = next(c for c in segmentation_cases(store) if c.study == "cv-1")
    config = PreprocessConfig(synthetic="syn", n4=False, zscore=False)
    real, _, _ = load_case(store, case, SegmentationSource.REAL_POST, config)
    fake, _, meta = load_case(store, case, SegmentationSource.SYN_POST, config)
    assert meta.half is Half.LOW_X  # LOW_BOX
    assert np.allclose(fake, np.round(real * 0.9), atol=1.0)  # the stand-in generator's gain
    assert LOW_BOX[4] < SHAPE[2] // 2


def test_full_preprocessing_resamples_and_normalises(store: str) -> None:
    case = next(c for c in segmentation_cases(store) if c.study == "cv-2")
    config = PreprocessConfig(synthetic="syn", target_spacing=(1.0, 1.5, 1.5))
    image, mask, meta = load_case(store, case, SegmentationSource.REAL_POST, config)
    assert image.shape == mask.shape == (16, 16, 11) and meta.n4 and meta.zscore
    assert meta.geometry.spacing == pytest.approx((1.0, 1.5, 1.5))
    assert float(image.mean()) == pytest.approx(0.0, abs=1e-4) and float(image.std()) == pytest.approx(1.0, rel=1e-3)
    lesion_mm3 = 4 * 6 * 6 * 2.0
    assert mask.sum() * 1.0 * 1.5 * 1.5 == pytest.approx(lesion_mm3, rel=0.35)  # a 4x6x6 box: coarse edges


def test_unknown_or_missing_synthetic_set_is_a_clear_error(store: str) -> None:
    case = segmentation_cases(store)[0]
    with pytest.raises(SyntheticSetError, match=r"no synthetic set 'nope' \(sets present: syn\)"):
        load_case(store, case, SegmentationSource.SYN_POST, PreprocessConfig(synthetic="nope"))
    with pytest.raises(SyntheticSetError, match="needs a synthetic set name"):
        load_case(store, case, SegmentationSource.SYN_POST, PreprocessConfig())
