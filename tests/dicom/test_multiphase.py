"""Multi-phase series (all DCE phases in one series) split into one series per phase."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np
import pydicom
import pytest
from pydicom.data import get_testdata_file
from pydicom.dataset import Dataset
from pydicom.sequence import Sequence

from breastflow.dicom.discover import probe_headers
from breastflow.dicom.errors import DuplicateSlice
from breastflow.dicom.header import InstanceHeader
from breastflow.dicom.multiphase import PhaseKey, phase_labels, split_multiphase, split_phases
from breastflow.dicom.series import SeriesGroup, group_series
from breastflow.dicom.volume import read_volume
from breastflow.phantom.config import PhantomConfig, TransferSyntax
from breastflow.phantom.mri import write_mri_study


def _study(root: Path, multiphase: bool) -> tuple[dict, list[SeriesGroup]]:
    config = PhantomConfig(studies=1, seed=11, t2_fraction=0.0, multiphase_series=multiphase)
    result = write_mri_study(root, 0, config, TransferSyntax.EXPLICIT_LE)
    paths = sorted(str(p) for p in (root / "dicom").rglob("*.dcm"))
    headers, problems = probe_headers(paths)
    assert not problems
    return result.study, group_series(headers)


@pytest.fixture(scope="module")
def phantom_pair(tmp_path_factory) -> tuple[dict, SeriesGroup, list[SeriesGroup]]:
    """The same phantom study written as one multi-phase series and as one series per phase."""
    row, (merged,) = _study(tmp_path_factory.mktemp("multi"), True)
    _, separate = _study(tmp_path_factory.mktemp("separate"), False)
    return row, merged, sorted(separate, key=lambda g: g.acquisition_start)


def _without(group: SeriesGroup, **cleared) -> SeriesGroup:
    """The group with some per-frame fields cleared (as if the tags were absent)."""
    headers = [dataclasses.replace(h, frames=tuple(dataclasses.replace(f, **cleared) for f in h.frames))
               for h in group.headers]
    return dataclasses.replace(group, headers=tuple(headers))


def test_phantom_multiphase_series_is_one_series_that_reads_as_duplicate_slices(phantom_pair) -> None:
    row, merged, separate = phantom_pair
    assert len(separate) == int(row["n_post_phases"]) + 1
    assert merged.n_frames == sum(g.n_frames for g in separate)
    with pytest.raises(DuplicateSlice):  # what happened before the split
        read_volume(merged)


@pytest.mark.parametrize(("cleared", "key"), [
    ({}, PhaseKey.TEMPORAL_POSITION),
    ({"temporal_position": None}, PhaseKey.TRIGGER_TIME),
    ({"temporal_position": None, "trigger_time_ms": None}, PhaseKey.ACQUISITION_TIME),
])
def test_split_phases_equal_the_separately_written_series(phantom_pair, cleared, key) -> None:
    _, merged, separate = phantom_pair
    group = _without(merged, **cleared)
    assert phase_labels(group)[1] is key
    phases = split_phases(group)
    assert len(phases) == len(separate)
    assert [p.series_uid for p in phases] == [f"{merged.series_uid}#t{j}" for j in range(1, len(phases) + 1)]
    assert [p.part.split(" (")[0] for p in phases] == [f"phase {j} of {len(phases)}" for j in range(1, len(phases) + 1)]
    starts = [p.acquisition_start for p in phases]
    assert starts == sorted(starts) and len(set(starts)) == len(starts)
    for phase, reference in zip(phases, separate, strict=True):
        assert phase.frame_keys is None  # single-frame files: whole files per phase
        assert "#t" not in phase.locator and phase.part in phase.locator
        np.testing.assert_array_equal(read_volume(phase).array, read_volume(reference).array)
        assert phase.contrast_agent == reference.contrast_agent


def test_plain_series_are_left_alone(phantom_pair) -> None:
    _, _, separate = phantom_pair
    assert split_multiphase(separate) == separate


def test_uneven_repeats_are_not_split(phantom_pair) -> None:
    _, merged, _ = phantom_pair
    short = dataclasses.replace(merged, headers=merged.headers[:-1])  # one slice of the last phase missing
    assert split_phases(short) == [short]
    with pytest.raises(DuplicateSlice):
        read_volume(short)


def test_ties_in_time_are_not_split(phantom_pair) -> None:
    _, merged, _ = phantom_pair
    moment = merged.first.frames[0].acquisition_datetime
    group = _without(merged, temporal_position=None, trigger_time_ms=None, acquisition_datetime=moment)
    assert split_phases(group) == [group]


def test_one_temporal_position_everywhere_is_not_a_split(phantom_pair) -> None:
    """Siemens XA / Philips carry a temporal position on every series: one value is no phase key."""
    _, merged, _ = phantom_pair
    group = _without(merged, temporal_position=1, trigger_time_ms=None)
    labels = phase_labels(group)
    assert labels is not None and labels[1] is PhaseKey.ACQUISITION_TIME  # falls through to the times


def test_more_temporal_positions_than_declared_are_not_trusted(phantom_pair) -> None:
    _, merged, _ = phantom_pair
    headers = tuple(dataclasses.replace(h, n_temporal_positions=2) for h in merged.headers)
    labels = phase_labels(dataclasses.replace(merged, headers=headers))
    assert labels is not None and labels[1] is PhaseKey.TRIGGER_TIME


ENHANCED = ["emri_small.dcm", "emri_small_jpeg_ls_lossless.dcm", "emri_small_RLE.dcm"]


def _enhanced_two_phases(name: str, folder: Path) -> tuple[Path, np.ndarray]:
    """An enhanced MR object whose 10 frames are 2 phases x 5 positions, interleaved and out of z order.

    Returns the path and the expected ``(phase, z, y, x)`` array.
    """
    ds = pydicom.dcmread(get_testdata_file(name))
    pixels = ds.pixel_array
    n = int(ds.NumberOfFrames)
    slots = np.random.default_rng(5).permutation(n // 2).repeat(2)
    phases = np.tile([2, 1], n // 2)  # TemporalPositionIndex, deliberately not in frame order
    shared, orientation, measures = Dataset(), Dataset(), Dataset()
    orientation.ImageOrientationPatient = [1, 0, 0, 0, 1, 0]
    measures.PixelSpacing, measures.SliceThickness = [0.9, 0.9], 1.5
    shared.PlaneOrientationSequence, shared.PixelMeasuresSequence = Sequence([orientation]), Sequence([measures])
    ds.SharedFunctionalGroupsSequence = Sequence([shared])
    items = []
    for slot, phase in zip(slots, phases, strict=True):
        item, position, content = Dataset(), Dataset(), Dataset()
        position.ImagePositionPatient = [-30.0, -20.0, float(slot) * 1.5]
        content.TemporalPositionIndex = int(phase)
        content.FrameAcquisitionDateTime = f"20200101100{int(phase)}00"
        item.PlanePositionSequence, item.FrameContentSequence = Sequence([position]), Sequence([content])
        items.append(item)
    ds.PerFrameFunctionalGroupsSequence = Sequence(items)
    ds.NumberOfTemporalPositions = 2
    path = folder / name.replace(".dcm", "")
    ds.save_as(path)
    expected = np.empty((2, n // 2, *pixels.shape[1:]), dtype=pixels.dtype)
    for frame, (slot, phase) in enumerate(zip(slots, phases, strict=True)):
        expected[phase - 1, slot] = pixels[frame]
    return path, expected


def _group(paths: list[Path]) -> SeriesGroup:
    headers, problems = probe_headers([str(p) for p in paths])
    assert not problems
    (group,) = group_series(headers)
    return group


@pytest.mark.parametrize("name", ENHANCED)
def test_enhanced_object_with_two_phases_splits_by_frame(name: str, tmp_path: Path) -> None:
    path, expected = _enhanced_two_phases(name, tmp_path)
    group = _group([path])
    assert phase_labels(group)[1] is PhaseKey.TEMPORAL_POSITION
    first, second = split_phases(group)
    for j, phase in enumerate((first, second)):
        assert phase.frame_keys is not None and len(phase.frame_keys) == 5 and phase.n_frames == 5
        assert phase.files == (str(path),)
        volume = read_volume(phase)
        np.testing.assert_array_equal(volume.array, expected[j])
        assert volume.spacing_mm == pytest.approx((1.5, 0.9, 0.9))
    assert first.acquisition_start < second.acquisition_start
    # fingerprints of the two phases differ although they share the file
    assert first.source_keys != second.source_keys


def test_enhanced_phases_by_frame_time_when_no_index(tmp_path: Path) -> None:
    path, expected = _enhanced_two_phases("emri_small.dcm", tmp_path)
    group = _group([path])
    frames = group.first.frames
    header: InstanceHeader = dataclasses.replace(
        group.first, frames=tuple(dataclasses.replace(f, temporal_position=None) for f in frames))
    group = dataclasses.replace(group, headers=(header,))
    assert phase_labels(group)[1] is PhaseKey.ACQUISITION_TIME
    for j, phase in enumerate(split_phases(group)):
        np.testing.assert_array_equal(read_volume(phase).array, expected[j])


def test_a_series_whose_split_fails_stays_whole_and_does_not_stop_the_batch(phantom_pair, monkeypatch) -> None:
    """split_multiphase runs over the whole batch: one malformed series must not raise out of it."""
    from breastflow.dicom import multiphase

    _, merged, separate = phantom_pair
    real = multiphase.split_phases
    broken = merged.series_uid

    def flaky(group: SeriesGroup) -> list[SeriesGroup]:
        if group.series_uid == broken:
            raise ValueError("malformed timing tags")
        return real(group)

    monkeypatch.setattr(multiphase, "split_phases", flaky)
    out = split_multiphase([merged, *separate])
    assert out[0] is merged  # kept whole: reading it reports duplicate-slice for this series alone
    assert [g.series_uid for g in out[1:]] == [g.series_uid for g in separate]
