"""Siemens mosaics: un-mosaicked into volumes with the right geometry, never stored as the tiled image.

Checked on a mosaic built here from a known volume, and on nibabel's real
Siemens DWI mosaics against two independent readers (nibabel's MosaicWrapper,
and dcm2niix where installed) by patient-space position of every voxel.
"""

from __future__ import annotations

import gzip
import json
import math
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pydicom
import pytest
from pydicom import uid
from pydicom.dataset import Dataset

from breastflow.dicom.discover import probe_headers
from breastflow.dicom.errors import MosaicUnsupported
from breastflow.dicom.mosaic import mosaic_problem, mosaic_tiles, unmosaic_series
from breastflow.dicom.multiphase import split_multiphase
from breastflow.dicom.series import SeriesGroup, group_series
from breastflow.dicom.volume import read_volume
from breastflow.phantom.config import TransferSyntax
from breastflow.phantom.dicom_io import make_uid, save, set_pixels

NIBABEL_DATA = Path(__import__("nibabel").__file__).parent / "nicom" / "tests" / "data"
ROW, COL = np.array([1.0, 0.0, 0.0]), np.array([0.0, 0.8, -0.6])  # an oblique slice


def write_mosaic(path: Path, volume: np.ndarray, first: np.ndarray, spacing=(0.7, 0.9), step: float = 3.0,
                 count_tag: bool = True, syntax: TransferSyntax = TransferSyntax.EXPLICIT_LE,
                 series: str = "mosaic", acquisition_time: str = "101500",
                 description: str = "ep2d_diff_tra") -> None:
    """Tile ``volume`` (n, r, c) into one Siemens-style mosaic image and write it."""
    n, r, c = volume.shape
    side = math.ceil(math.sqrt(n))
    mosaic = np.zeros((side * r, side * c), dtype=np.uint16)
    for i in range(n):
        mosaic[(i // side) * r:(i // side + 1) * r, (i % side) * c:(i % side + 1) * c] = volume[i]
    dy, dx = spacing
    ipp = first - ROW * dx * (side * c - c) / 2 - COL * dy * (side * r - r) / 2
    ds = Dataset()
    ds.SOPClassUID = uid.MRImageStorage
    ds.SOPInstanceUID = make_uid("mosaic", series, acquisition_time)
    ds.StudyInstanceUID, ds.SeriesInstanceUID = make_uid("mosaic-study"), make_uid("mosaic-series", series)
    ds.PatientID, ds.Modality, ds.Manufacturer = "MOSAIC-PATIENT", "MR", "SIEMENS"
    ds.SeriesNumber, ds.InstanceNumber, ds.SeriesDescription = 5, 1, description
    ds.ImageType = ["ORIGINAL", "PRIMARY", "M", "ND", "MOSAIC"]
    ds.AcquisitionDate, ds.AcquisitionTime = "20200101", acquisition_time
    ds.ImageOrientationPatient = [*ROW.tolist(), *COL.tolist()]
    ds.ImagePositionPatient = [float(v) for v in ipp]
    ds.PixelSpacing = list(spacing)
    ds.SliceThickness, ds.SpacingBetweenSlices = step, step
    if count_tag:
        block = ds.private_block(0x0019, "SIEMENS MR HEADER", create=True)
        block.add_new(0x0A, "US", n)
    set_pixels(ds, mosaic, bits_stored=12)
    save(ds, path, syntax)


def _groups(paths: list[Path]) -> list[SeriesGroup]:
    headers, problems = probe_headers([str(p) for p in paths])
    assert not problems
    return group_series(headers)


@pytest.mark.parametrize("syntax", [TransferSyntax.EXPLICIT_LE, TransferSyntax.RLE, TransferSyntax.JPEGLS_LOSSLESS])
@pytest.mark.parametrize("n", [5, 9])
def test_built_mosaic_reads_back_as_its_volume(tmp_path: Path, syntax: TransferSyntax, n: int) -> None:
    volume = np.random.default_rng(n).integers(0, 4096, size=(n, 6, 8), dtype=np.uint16)
    first = np.array([-40.0, 12.5, 30.0])
    write_mosaic(tmp_path / "m.dcm", volume, first, syntax=syntax)
    (raw,) = _groups([tmp_path / "m.dcm"])
    assert raw.n_frames == 1 and isinstance(mosaic_problem(raw), MosaicUnsupported)
    with pytest.raises(MosaicUnsupported):  # never the tiled image as one slice
        read_volume(raw)
    (group,) = unmosaic_series([raw])
    assert mosaic_problem(group) is None
    assert (group.first.rows, group.first.columns, group.n_frames) == (6, 8, n)
    read = read_volume(group)
    np.testing.assert_array_equal(read.array, volume)
    assert read.origin_mm == pytest.approx(tuple(first))
    assert read.spacing_mm == pytest.approx((3.0, 0.7, 0.9))
    np.testing.assert_allclose(read.direction, np.stack([ROW, COL, np.cross(ROW, COL)]), atol=1e-9)


def test_mosaic_without_slice_count_stays_unsupported(tmp_path: Path) -> None:
    volume = np.ones((4, 6, 8), dtype=np.uint16)
    write_mosaic(tmp_path / "m.dcm", volume, np.zeros(3), count_tag=False)
    (group,) = unmosaic_series(_groups([tmp_path / "m.dcm"]))
    problem = mosaic_problem(group)
    assert isinstance(problem, MosaicUnsupported) and problem.reason.value == "mosaic-unsupported"
    with pytest.raises(MosaicUnsupported):
        read_volume(group)


def test_mosaic_tiles_refuses_a_wrong_grid(tmp_path: Path) -> None:
    write_mosaic(tmp_path / "m.dcm", np.ones((4, 6, 8), dtype=np.uint16), np.zeros(3))
    (group,) = unmosaic_series(_groups([tmp_path / "m.dcm"]))
    with pytest.raises(MosaicUnsupported):
        mosaic_tiles(np.zeros((13, 16), dtype=np.uint16), group.first)


def test_mosaic_time_series_splits_into_volumes(tmp_path: Path) -> None:
    """Two mosaics of one series (two time points): un-mosaicked, then split like dynamic phases."""
    volumes = np.random.default_rng(1).integers(0, 4096, size=(2, 5, 6, 8), dtype=np.uint16)
    for t, time in enumerate(("101500", "101530")):
        write_mosaic(tmp_path / f"m{t}.dcm", volumes[t], np.zeros(3), acquisition_time=time)
    phases = split_multiphase(unmosaic_series(_groups([tmp_path / "m0.dcm", tmp_path / "m1.dcm"])))
    assert len(phases) == 2
    for phase, volume in zip(phases, volumes, strict=True):
        np.testing.assert_array_equal(read_volume(phase).array, volume)


@pytest.fixture(scope="module")
def siemens_dwi(tmp_path_factory) -> list[Path]:
    """nibabel's real Siemens DWI mosaics (b=0 and b=1000, one series, 48 slices of 128x128 in 896x896)."""
    folder = tmp_path_factory.mktemp("dwi")
    paths = []
    for name in ("siemens_dwi_0.dcm.gz", "siemens_dwi_1000.dcm.gz"):
        source = NIBABEL_DATA / name
        if not source.exists():
            pytest.skip("nibabel's test data is not installed")
        path = folder / name.removesuffix(".gz")
        path.write_bytes(gzip.decompress(source.read_bytes()))
        paths.append(path)
    return paths


def _world_lps(read) -> np.ndarray:
    """LPS position (mm) of every voxel of a read volume, shape (Z, Y, X, 3)."""
    z, y, x = np.meshgrid(*[np.arange(s) for s in read.array.shape], indexing="ij")
    dz, dy, dx = read.spacing_mm
    row, col, normal = read.direction
    return (np.asarray(read.origin_mm) + x[..., None] * dx * row + y[..., None] * dy * col
            + z[..., None] * dz * normal)


def _assert_same_voxels(read, reference: np.ndarray, affine: np.ndarray) -> None:
    """Every voxel of ``read`` equals the reference voxel at the same patient position."""
    world = _world_lps(read).reshape(-1, 3)
    index = (np.linalg.inv(affine) @ np.c_[world, np.ones(len(world))].T)[:3].T
    assert np.abs(index - np.round(index)).max() < 1e-3  # the grids coincide
    i = np.round(index).astype(int)
    assert (i >= 0).all() and (i < np.asarray(reference.shape[:3])).all()
    np.testing.assert_array_equal(read.array.reshape(-1), reference[i[:, 0], i[:, 1], i[:, 2]])


def test_real_siemens_dwi_mosaics_match_nibabel(siemens_dwi) -> None:
    from nibabel.nicom import dicomwrappers

    phases = split_multiphase(unmosaic_series(_groups(siemens_dwi)))
    assert len(phases) == 2 and all(p.n_frames == 48 and p.first.rows == 128 for p in phases)
    for phase, path in zip(phases, siemens_dwi, strict=True):
        read = read_volume(phase)
        assert read.array.shape == (48, 128, 128)
        wrapper = dicomwrappers.wrapper_from_data(pydicom.dcmread(path))
        _assert_same_voxels(read, np.asarray(wrapper.get_data()), wrapper.affine)


@pytest.mark.skipif(shutil.which("dcm2niix") is None, reason="dcm2niix is not installed")
def test_real_siemens_dwi_mosaic_matches_dcm2niix(siemens_dwi, tmp_path: Path) -> None:
    import nibabel

    source = tmp_path / "in"
    source.mkdir()
    shutil.copy(siemens_dwi[0], source / "b0.dcm")
    subprocess.run(["dcm2niix", "-z", "n", "-f", "out", "-o", str(tmp_path), str(source)], check=True,
                   capture_output=True)
    image = nibabel.load(tmp_path / "out.nii")
    lps = np.diag([-1.0, -1.0, 1.0, 1.0]) @ image.affine  # NIfTI is RAS
    (group,) = unmosaic_series(_groups([source / "b0.dcm"]))
    read = read_volume(group)
    _assert_same_voxels(read, np.asarray(image.dataobj), lps)
    assert json.loads((tmp_path / "out.json").read_text()).get("Manufacturer") == "Siemens"


def test_mosaic_dynamic_series_is_ingested_as_volumes(tmp_path: Path, monkeypatch) -> None:
    """End to end (``breastflow ingest --accept any``): two mosaics of one series land as pre and post_1."""
    from click.testing import CliRunner

    from breastflow.cli import main
    from breastflow.store.fs import StoreLocation
    from breastflow.store.zarr_io import open_series_array

    monkeypatch.setenv("BREASTFLOW_PSEUDONYM_KEY", "m" * 48)
    volumes = np.random.default_rng(2).integers(0, 4096, size=(2, 5, 6, 8), dtype=np.uint16)
    landing = tmp_path / "landing"
    landing.mkdir()
    for t, time in enumerate(("101500", "101630")):
        write_mosaic(landing / f"m{t}.dcm", volumes[t], np.zeros(3), acquisition_time=time,
                     description="ep2d_perf_dyn")
    store = tmp_path / "store"
    report = tmp_path / "report.json"
    result = CliRunner().invoke(main, ["ingest", str(landing), str(store), "--accept", "any", "--quiet",
                                       "--report", str(report)])
    assert result.exit_code == 0, result.output
    outcomes = json.loads(report.read_text())["entries"]
    stored = {o["series"]: o for o in outcomes if o["outcome"] == "new"}
    assert sorted(stored) == ["post_1", "pre"]
    loc = StoreLocation.from_url(str(store))
    study = stored["pre"]["study"]
    np.testing.assert_array_equal(open_series_array(loc, study, "pre")[:], volumes[0])
    np.testing.assert_array_equal(open_series_array(loc, study, "post_1")[:], volumes[1])
