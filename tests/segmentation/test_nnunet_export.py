"""nnU-Net v2 raw export: layout, dataset.json, splits_final.json, geometry, CLI and bad input.

The layout is checked against nnU-Net v2's documented format
(``documentation/dataset_format.md``: ``imagesTr/<case>_<XXXX>.nii.gz``,
``labelsTr/<case>.nii.gz``, ``dataset.json`` with ``channel_names``, ``labels``,
``numTraining``, ``file_ending``). nnunetv2 itself is not a breastflow
dependency (its install replaces the pinned torch); when it is importable,
:func:`test_nnunet_own_integrity_check` also runs its
``verify_dataset_integrity`` on the export.
"""

from __future__ import annotations

import json
import re

import numpy as np
import pytest
import SimpleITK as sitk
from click.testing import CliRunner
from segmentation_helpers import build_segmentation_store

from breastflow.cli import main
from breastflow.segmentation.experiment import build_experiment
from breastflow.segmentation.nnunet_export import dataset_folder_name, export_nnunet
from breastflow.segmentation.preprocess import PreprocessConfig, SegmentationSource, load_case


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> str:
    return build_segmentation_store(str(tmp_path_factory.mktemp("seg") / "store")).url


@pytest.fixture(scope="module")
def exported(store: str, tmp_path_factory: pytest.TempPathFactory):
    return export_nnunet(store, tmp_path_factory.mktemp("nnunet_raw"), 2, "real_pre+syn_post", synthetic="syn")


def test_layout_follows_the_nnunet_v2_format(exported) -> None:
    folder = exported.folder
    assert re.fullmatch(r"Dataset\d{3}_[A-Za-z0-9_-]+", folder.name) and folder.name.startswith("Dataset501_")
    assert {p.name for p in folder.iterdir()} == {"dataset.json", "splits_final.json", "imagesTr", "labelsTr",
                                                  "imagesTs", "labelsTs"}
    images = sorted(p.name for p in (folder / "imagesTr").iterdir())
    labels = sorted(p.name for p in (folder / "labelsTr").iterdir())
    assert all(re.fullmatch(r".+_0000\.nii\.gz", n) for n in images)
    assert [n.replace("_0000.nii.gz", ".nii.gz") for n in images] == labels  # one label per training case
    assert len(images) == exported.n_train == 14  # 7 pool cases x (real pre, syn post), unlinked
    assert {n.split("_", 1)[1] for n in images} == {"real_pre_0000.nii.gz", "syn_post_0000.nii.gz"}
    tests = sorted(p.name for p in (folder / "imagesTs").iterdir())
    assert len(tests) == exported.n_test == 4 and all(n.endswith("_real_post_0000.nii.gz") for n in tests)
    dataset = json.loads((folder / "dataset.json").read_text())
    assert dataset["channel_names"] == {"0": "MRI"} and dataset["labels"] == {"background": 0, "tumour": 1}
    assert dataset["numTraining"] == 14 and dataset["file_ending"] == ".nii.gz"
    assert dataset["breastflow"]["scenario"] == 2 and dataset["breastflow"]["test_source"] == "real_post"


def test_splits_are_breastflows_patient_folds(store: str, exported) -> None:
    splits = json.loads((exported.folder / "splits_final.json").read_text())
    data = build_experiment(store, [2], "syn")
    assert len(splits) == len(data.folds) == 5
    study_patient = {c.study: c.patient for c in data.cases}
    everyone = {p.name.replace("_0000.nii.gz", "") for p in (exported.folder / "imagesTr").iterdir()}
    validated = []
    for split, fold in zip(splits, data.folds, strict=True):
        assert set(split) == {"train", "val"} and set(split["train"]) | set(split["val"]) == everyone
        train_patients = {study_patient[i.split("_", 1)[0]] for i in split["train"]}
        val_patients = {study_patient[i.split("_", 1)[0]] for i in split["val"]}
        assert not train_patients & val_patients and val_patients == set(fold.val)
        validated += split["val"]
    assert sorted(validated) == sorted(everyone)


def test_volumes_keep_geometry_and_labels(store: str, exported) -> None:
    data = build_experiment(store, [2], "syn")
    case = next(c for c in data.cases if c.study == "cv-1")
    image = sitk.ReadImage(str(exported.folder / "imagesTr" / "cv-1_syn_post_0000.nii.gz"))
    label = sitk.ReadImage(str(exported.folder / "labelsTr" / "cv-1_syn_post.nii.gz"))
    expected, mask, meta = load_case(store, case, SegmentationSource.SYN_POST,
                                     PreprocessConfig(synthetic="syn", zscore=False))
    for item in (image, label):
        assert np.allclose(item.GetSpacing(), meta.geometry.spacing[::-1])
        assert np.allclose(item.GetOrigin(), meta.geometry.origin)
        assert np.allclose(np.asarray(item.GetDirection()).reshape(3, 3).T.ravel(), meta.geometry.direction)
    assert np.allclose(sitk.GetArrayFromImage(image), expected, atol=1e-4)  # N4-corrected, not z-scored
    labels = sitk.GetArrayFromImage(label)
    assert label.GetPixelID() == sitk.sitkUInt8 and set(np.unique(labels)) == {0, 1}
    assert np.array_equal(labels, mask)


def test_cli_exports_and_reports_bad_input(store: str, tmp_path) -> None:
    runner = CliRunner()
    result = runner.invoke(main, ["export-nnunet", store, str(tmp_path), "--scenario", "3", "--train-set",
                                  "real_post", "--dataset-id", "777", "--no-n4", "--json"])
    assert result.exit_code == 0, result.output
    payload = json.loads(result.output)
    assert payload["n_train"] == 7 and payload["n_test"] == 4 and payload["n_folds"] == 5
    assert payload["folder"].endswith(dataset_folder_name(777, 3, "real_post"))
    again = runner.invoke(main, ["export-nnunet", store, str(tmp_path), "--scenario", "3", "--train-set",
                                 "real_post", "--dataset-id", "777"])
    assert again.exit_code != 0 and "not empty" in again.output
    for args, message in (
        (["--scenario", "5", "--train-set", "real_pre"], "out of range"),
        (["--scenario", "1", "--train-set", "real_post"], "scenario 1 has no training set 'real_post'"),
        (["--scenario", "1", "--train-set", "syn_post", "--synthetic", "nope"], "no synthetic set 'nope'"),
        (["--scenario", "1", "--train-set", "syn_post"], "name the synthetic set"),
    ):
        bad = runner.invoke(main, ["export-nnunet", store, str(tmp_path / "bad"), *args])
        assert bad.exit_code != 0 and message in bad.output, (args, bad.output)
    empty = runner.invoke(main, ["export-nnunet", str(tmp_path / "no-store"), str(tmp_path / "bad"), "--scenario",
                                 "3", "--train-set", "real_post"])
    assert empty.exit_code != 0 and "empty catalog" in empty.output


def test_nnunet_own_integrity_check(exported, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("nnUNet_raw", str(exported.folder.parent))
    verify = pytest.importorskip("nnunetv2.experiment_planning.verify_dataset_integrity",
                                 reason="nnunetv2 not installed (not a breastflow dependency)")
    verify.verify_dataset_integrity(str(exported.folder), num_processes=1)  # raises on any layout/label error
