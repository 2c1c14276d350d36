"""``breastflow generate`` on a tiny phantom store: geometry, dtype, commit, provenance, round trip, errors."""

from __future__ import annotations

import json

import nibabel as nib
import numpy as np
import pytest
from click.testing import CliRunner
from generate_helpers import (
    GEOMETRY,
    VERSION,
    build_tiny_store,
    identity_model,
    write_checkpoint,
)

from breastflow.cli import main
from breastflow.data.datasets.paired import MissingPhaseError, PairedPhasesSpec
from breastflow.generate.config import GenerateConfig, GenerateSplit
from breastflow.generate.run import (
    GenerateError,
    GeneratorSource,
    generate_synthetic,
    generate_with_model,
)
from breastflow.generate.synthetic import read_synthetic_commits, synthetic_location
from breastflow.ingest.mask_grid import LPS_TO_RAS, StoredGrid
from breastflow.models import build_model
from breastflow.store import layout
from breastflow.store.commit import read_commit
from breastflow.store.fs import StoreLocation
from breastflow.store.zarr_io import open_series_array, series_attrs, stored_hash
from breastflow.train.checkpoint import CheckpointError, CheckpointMismatchError


@pytest.fixture(scope="module")
def store(tmp_path_factory) -> str:
    return build_tiny_store(str(tmp_path_factory.mktemp("gen") / "store"))


@pytest.fixture(scope="module")
def checkpoint(store, tmp_path_factory):
    return write_checkpoint(tmp_path_factory.mktemp("ck") / "epoch_000001", store)


@pytest.fixture(scope="module")
def generated(store, checkpoint):
    return generate_synthetic(GenerateConfig(checkpoint=str(checkpoint), store=store, split=GenerateSplit.ALL,
                                             name="rand"))


SOURCE = GeneratorSource(checkpoint="test", model="pix2pixhd", run="r1", epoch=0, step=0, dataset_version=VERSION)


def test_synthetic_series_have_the_real_geometry_dtype_shape_and_rescale(store, generated):
    loc = StoreLocation.from_url(store)
    sloc = synthetic_location(loc, "rand")
    assert generated.studies == ["stu-a", "stu-b", "stu-c", "stu-d"] and generated.series == ["post_1"]
    for study in generated.studies:
        real = open_series_array(loc, study, "post_1")
        fake = open_series_array(sloc, study, "post_1")
        assert fake.shape == real.shape and fake.dtype == real.dtype
        real_attrs = series_attrs(loc, study, "post_1")["breastflow"]
        fake_attrs = series_attrs(sloc, study, "post_1")["breastflow"]
        for key in ("spacing_mm", "origin_mm", "direction", "rescale_slope", "rescale_intercept", "phase_index",
                    "study", "patient", "series"):
            assert fake_attrs[key] == real_attrs[key], key
        assert fake_attrs["spacing_mm"] == list(GEOMETRY.spacing_mm)
        assert fake_attrs["direction"] == list(GEOMETRY.direction)
        assert not np.array_equal(np.asarray(fake[:]), np.asarray(real[:]))  # generated, not copied


def test_synthetic_series_are_committed_with_provenance(store, generated, checkpoint):
    loc = StoreLocation.from_url(store)
    sloc = synthetic_location(loc, "rand")
    records = read_synthetic_commits(loc, "rand")
    assert [(r.study, r.series) for r in records] == [(s, "post_1") for s in generated.studies]
    for record in records:
        assert record.content_hash == stored_hash(sloc, record.study, record.series)
        assert record.content_hash != read_commit(loc, record.study, record.series).content_hash
        assert record.patient == read_commit(loc, record.study, "post_1").patient
        prov = series_attrs(sloc, record.study, record.series)["breastflow"]["provenance"]
        assert prov["kind"] == "synthetic" and prov["model"] == "pix2pixhd" and prov["epoch"] == 0
        assert prov["dataset_version"] == VERSION and prov["checkpoint"] == str(checkpoint / "state.pt")
        assert prov["source_series"] == "pre"
    assert (loc.fs_path(layout.synthetic_commit_marker("rand", "stu-a", "post_1"))
            == sloc.fs_path(layout.commit_marker("stu-a", "post_1")))
    # the real store is untouched: no synthetic series in its own commits
    assert all(r.study != "rand" for r in records)


def test_identity_generator_gives_back_the_pre_series_within_one_raw_unit(tmp_path):
    """Normalise with the study unit, generate, invert with the target's map: pre comes back (int16 + rescale, odd grid)."""
    store = build_tiny_store(str(tmp_path / "store"))
    loc = StoreLocation.from_url(store)
    spec = PairedPhasesSpec(targets=("post_1",), intensity={"clip_max": 4.0})
    result = generate_with_model(identity_model(), spec, loc, GenerateSplit.TEST, "ident", SOURCE, batch=2)
    assert result.studies == ["stu-c", "stu-d"]
    for study in result.studies:
        pre = np.asarray(open_series_array(loc, study, "pre")[:], dtype=np.int64)
        fake = np.asarray(open_series_array(synthetic_location(loc, "ident"), study, "post_1")[:], dtype=np.int64)
        assert fake.shape == pre.shape
        assert np.abs(fake - pre).max() <= 1, study


def test_resized_training_grid_is_resized_back_to_the_stored_grid(tmp_path):
    store = build_tiny_store(str(tmp_path / "store"))
    loc = StoreLocation.from_url(store)
    spec = PairedPhasesSpec(targets=("post_1",), image_size=32, intensity={"clip_max": 4.0})
    generate_with_model(identity_model(), spec, loc, GenerateSplit.TEST, "sized", SOURCE)
    pre = np.asarray(open_series_array(loc, "stu-d", "pre")[:], dtype=np.float64)
    fake = np.asarray(open_series_array(synthetic_location(loc, "sized"), "stu-d", "post_1")[:], dtype=np.float64)
    assert fake.shape == pre.shape == (5, 22, 26)
    assert np.abs(fake - pre).mean() < 0.1 * np.abs(pre).mean()  # close, not exact: two resamplings


def test_joint_model_writes_post_1_to_post_3(tmp_path):
    store = build_tiny_store(str(tmp_path / "store"))
    ck = write_checkpoint(tmp_path / "ck", store, targets=("post_1", "post_2", "post_3"))
    result = generate_synthetic(GenerateConfig(checkpoint=str(ck), store=store, split=GenerateSplit.TEST,
                                               name="joint"))
    assert result.series == ["post_1", "post_2", "post_3"]
    records = read_synthetic_commits(StoreLocation.from_url(store), "joint")
    assert sorted((r.study, r.series) for r in records) == [(s, p) for s in ("stu-c", "stu-d")
                                                           for p in ("post_1", "post_2", "post_3")]


def test_evaluate_reads_synthetic_series_through_the_selection(store, generated):
    from breastflow.data.selection_loading import load_selection

    real = load_selection(f"store://{store}?series=post_1&split=test", "real")
    fake = load_selection(f"store://{store}?synthetic=rand&series=post_1&split=test", "fake")
    assert fake.names == real.names and len(fake.names) == 11
    sloc = synthetic_location(StoreLocation.from_url(store), "rand")
    stored = np.asarray(open_series_array(sloc, "stu-c", "post_1")[:])
    assert np.array_equal(fake.images[0], stored[0])
    scaled = load_selection(f"store://{store}?synthetic=rand&series=post_1&split=test&scale=per-case", "fake")
    real_scaled = load_selection(f"store://{store}?series=post_1&split=test&scale=per-case", "real")
    assert np.allclose(scaled.meta.case_scale, real_scaled.meta.case_scale)  # the real pre-contrast unit


def test_evaluate_cli_pairs_real_and_synthetic(store, generated, tmp_path):
    out = tmp_path / "eval.json"
    result = CliRunner().invoke(main, ["evaluate", f"store://{store}?series=post_1&split=test",
                                       f"store://{store}?synthetic=rand&series=post_1&split=test",
                                       "--paired", "--metrics", "mae,psnr", "--json", str(out)])
    assert result.exit_code == 0, result.output
    assert "mae" in out.read_text()


def test_unknown_synthetic_set_is_a_clear_selection_error(store, generated):
    from breastflow.data.selection import SelectionError
    from breastflow.data.selection_loading import load_selection

    with pytest.raises(SelectionError, match=r"no synthetic set 'nope'.*sets present: .*rand"):
        load_selection(f"store://{store}?synthetic=nope&series=post_1")
    with pytest.raises(SelectionError, match="unknown series role 'post_2'"):
        load_selection(f"store://{store}?synthetic=rand&series=post_2")


def test_nifti_export_has_the_real_affine(store, checkpoint, tmp_path):
    result = generate_synthetic(GenerateConfig(checkpoint=str(checkpoint), store=store, split=GenerateSplit.TEST,
                                               name="nii", nifti_dir=tmp_path / "nifti"))
    assert len(result.nifti) == 2
    loc = StoreLocation.from_url(store)
    path = tmp_path / "nifti" / "nii" / "stu-d_post_1.nii.gz"
    image = nib.load(str(path))
    grid = StoredGrid.from_attrs(series_attrs(loc, "stu-d", "pre")["breastflow"])
    assert np.allclose(image.affine, LPS_TO_RAS @ grid.affine_lps())
    assert image.affine[0, 0] == pytest.approx(0.8)  # LPS x flipped by direction, then to RAS: +0.8
    stored = np.asarray(open_series_array(synthetic_location(loc, "nii"), "stu-d", "post_1")[:])
    assert image.shape == (26, 22, 5)
    raw = np.asarray(image.dataobj.get_unscaled())
    assert np.array_equal(raw.transpose(2, 1, 0), stored)
    assert (image.dataobj.slope, image.dataobj.inter) == (2.0, -50.0)  # the remaining rescale as scl_slope/inter


def test_cli_json(store, checkpoint, tmp_path):
    result = CliRunner().invoke(main, ["generate", str(checkpoint), store, "--split", "val", "--out", "x"])
    assert result.exit_code != 0 and "no val studies" in result.output
    result = CliRunner().invoke(main, ["generate", str(checkpoint), store, "--split", "train", "--out", "cli",
                                       "--batch", "3", "--json", "--nifti", str(tmp_path / "nii")])
    assert result.exit_code == 0, result.output
    data = json.loads(result.output)
    assert data["name"] == "cli" and data["series"] == ["post_1"] and data["studies"] == 2
    assert sorted(p.name for p in (tmp_path / "nii" / "cli").iterdir()) == ["stu-a_post_1.nii.gz",
                                                                         "stu-b_post_1.nii.gz"]


def test_default_name_is_model_run_epoch(store, checkpoint):
    result = generate_synthetic(GenerateConfig(checkpoint=str(checkpoint), store=store, split=GenerateSplit.TEST))
    assert result.name == "pix2pixhd-r1-e0"


def test_unknown_checkpoint_is_a_clear_error(store, tmp_path):
    with pytest.raises(CheckpointError, match="no checkpoint at"):
        generate_synthetic(GenerateConfig(checkpoint=str(tmp_path / "missing"), store=store))
    result = CliRunner().invoke(main, ["generate", str(tmp_path / "missing"), store])
    assert result.exit_code != 0 and "no checkpoint at" in result.output


def test_checkpoint_of_another_model_is_a_clear_error(store, checkpoint, tmp_path):
    with pytest.raises(CheckpointMismatchError, match="holds model 'pix2pixhd', not 'template'"):
        generate_synthetic(GenerateConfig(checkpoint=str(checkpoint), store=store, model="template"))
    result = CliRunner().invoke(main, ["generate", str(checkpoint), store, "--model", "template"])
    assert result.exit_code != 0 and "not 'template'" in result.output


def test_checkpoint_not_trained_on_paired_phases_is_a_clear_error(store, tmp_path):
    from breastflow.train.checkpoint import save_checkpoint

    model = build_model("template", {"width": 2})
    save_checkpoint(tmp_path / "ck", model, VERSION, {"run": "r", "model": "template"})
    with pytest.raises(GenerateError, match="trained on dataset None.*paired_phases"):
        generate_synthetic(GenerateConfig(checkpoint=str(tmp_path / "ck"), store=store))


def test_store_without_the_requested_phase_is_a_clear_error(store, tmp_path):
    ck = write_checkpoint(tmp_path / "ck", store, targets=("post_4",))
    with pytest.raises(MissingPhaseError, match="phase 'post_4' is missing in 2 of 2 test studies"):
        generate_synthetic(GenerateConfig(checkpoint=str(ck), store=store))
    result = CliRunner().invoke(main, ["generate", str(ck), store])
    assert result.exit_code != 0 and "post_4" in result.output


def test_bad_set_name_is_refused():
    with pytest.raises(ValueError, match="not a valid store name"):
        GenerateConfig(checkpoint="x", store="y", name="../up")
