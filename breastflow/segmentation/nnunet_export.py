"""Export a scenario's training set as an nnU-Net v2 raw dataset, with breastflow's folds.

So users can run nnU-Net itself (paper 003 used ``nnunetv2 3d_fullres``) on
exactly the cases, items and folds breastflow uses. The layout is nnU-Net v2's
(``documentation/dataset_format.md``)::

    <out>/DatasetXXX_<name>/
      dataset.json          channel_names {"0": <source>}, labels {"background": 0, "tumour": 1},
                            numTraining, file_ending ".nii.gz" (+ breastflow provenance keys)
      imagesTr/<item>_0000.nii.gz    one channel per training item (<study>_<source>)
      labelsTr/<item>.nii.gz         its binary tumour mask
      imagesTs/<item>_0000.nii.gz    the scenario's test items (test source)
      labelsTs/<item>.nii.gz         their masks (not read by nnU-Net; for scoring its predictions)
      splits_final.json     breastflow's 5 patient-level folds: [{"train": [...], "val": [...]}, ...]

``splits_final.json`` belongs in ``nnUNet_preprocessed/DatasetXXX_<name>/`` once
``nnUNetv2_plan_and_preprocess`` has created that folder; nnU-Net then uses it
instead of its own case-level split (which would put a patient's pre and
synthetic post volumes in different folds).

Volumes are written with SimpleITK with their real spacing, origin and
direction (``float32`` images, ``uint8`` labels), after the single-breast crop
and N4 (paper 003 applied both before nnU-Net); resampling and z-score are left
to nnU-Net's own preprocessing.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import SimpleITK as sitk

from breastflow.segmentation.experiment import ExperimentData, build_experiment, fold_items, test_items, train_items
from breastflow.segmentation.preprocess import PreprocessConfig, load_case
from breastflow.segmentation.scenarios import train_set_of
from breastflow.segmentation.volume_ops import to_sitk

FILE_ENDING = ".nii.gz"
LABELS = {"background": 0, "tumour": 1}
#: The first dataset id nnU-Net leaves to users (500-999 avoids its pretrained datasets).
DEFAULT_DATASET_ID = 501


@dataclass(frozen=True)
class NnunetExport:
    """What :func:`export_nnunet` wrote.

    Attributes:
        folder: the ``DatasetXXX_<name>`` folder; train_key: the training set's key;
        test_source: the test items' source; n_train, n_test: items written; n_folds: folds in splits_final.json.
    """

    folder: Path
    train_key: str
    test_source: str
    n_train: int
    n_test: int
    n_folds: int


def dataset_folder_name(dataset_id: int, scenario: int, train_key: str) -> str:
    """``Dataset<id:03d>_breastflow_s<scenario>_<key>`` with ``+`` written ``-`` (nnU-Net-safe characters).

    Raises:
        ValueError: ``dataset_id`` outside 1..999.
    """
    if not 1 <= dataset_id <= 999:
        raise ValueError(f"nnU-Net dataset ids are 1..999 (use 500 or more for your own), got {dataset_id}")
    name = re.sub(r"[^A-Za-z0-9_-]", "-", f"breastflow_s{scenario}_{train_key}")
    return f"Dataset{dataset_id:03d}_{name}"


def _write(volume: np.ndarray, geometry, path: Path) -> None:
    sitk.WriteImage(to_sitk(volume, geometry), str(path), useCompression=True)


def export_nnunet(store: str, out: str | Path, scenario: int, train_key: str, synthetic: str | None = None,
                  dataset_id: int = DEFAULT_DATASET_ID, n4: bool = True, data: ExperimentData | None = None
                  ) -> NnunetExport:
    """Write scenario ``scenario``'s training set ``train_key`` and its test items as an nnU-Net v2 raw dataset.

    Args:
        store: the store; out: the folder to create ``DatasetXXX_<name>`` in (e.g. ``$nnUNet_raw``).
        scenario: 1-4; train_key: a training set of that scenario (e.g. ``real_pre+syn_post``).
        synthetic: the synthetic set, when the training set holds ``syn_post``.
        dataset_id: nnU-Net dataset id; n4: N4 bias-field correction before export.
        data: an already built experiment (else :func:`build_experiment` over ``scenario``).

    Returns:
        :class:`NnunetExport`.

    Raises:
        ScenarioError: unknown scenario or training set. NoMaskError: no masks in the store.
        SyntheticSetError: see :func:`build_experiment`.
        FileExistsError: the dataset folder exists and is not empty.
    """
    train_set, test_source = train_set_of(scenario, train_key)
    if data is None:
        data = build_experiment(store, [scenario], synthetic, train_keys={train_set.key})
    if train_set.synthetic and not data.synthetic:
        raise ValueError(f"training set {train_key} needs a synthetic set (--synthetic NAME)")
    folder = Path(out) / dataset_folder_name(dataset_id, scenario, train_set.key)
    if folder.exists() and any(folder.iterdir()):
        raise FileExistsError(f"{folder} exists and is not empty; remove it or choose another --dataset-id")
    config = PreprocessConfig(crop=True, n4=n4, target_spacing=None, zscore=False, synthetic=data.synthetic)
    train = train_items(data.cases, train_set)
    tests = test_items(data.cases, test_source)
    for sub in ("imagesTr", "labelsTr", "imagesTs", "labelsTs"):
        (folder / sub).mkdir(parents=True, exist_ok=True)
    for items, images, labels in ((train, "imagesTr", "labelsTr"), (tests, "imagesTs", "labelsTs")):
        for item in items:
            image, mask, meta = load_case(data.store, item.case, item.source, config)
            _write(image.astype(np.float32), meta.geometry, folder / images / f"{item.identifier}_0000{FILE_ENDING}")
            _write(mask.astype(np.uint8), meta.geometry, folder / labels / f"{item.identifier}{FILE_ENDING}")
    splits = []
    for fold in data.folds:
        fold_train, fold_val = fold_items(train, fold)
        splits.append({"train": [i.identifier for i in fold_train], "val": [i.identifier for i in fold_val]})
    dataset = {
        "channel_names": {"0": "MRI"},
        "labels": dict(LABELS),
        "numTraining": len(train),
        "file_ending": FILE_ENDING,
        "name": folder.name.split("_", 1)[1],
        "description": f"breastflow scenario {scenario}: train on {train_set.label}, test on {test_source.value} "
                       "(paper 003, Table 3); single-breast crop" + (", N4 bias-field corrected" if n4 else ""),
        "breastflow": {"store": data.store, "scenario": scenario, "train_set": train_set.key,
                       "test_source": test_source.value, "synthetic": data.synthetic, "n4": n4,
                       "numTest": len(tests), "folds": "splits_final.json (patient-level)"},
    }
    (folder / "dataset.json").write_text(json.dumps(dataset, indent=2) + "\n")
    (folder / "splits_final.json").write_text(json.dumps(splits, indent=2) + "\n")
    return NnunetExport(folder=folder, train_key=train_set.key, test_source=test_source.value, n_train=len(train),
                        n_test=len(tests), n_folds=len(splits))
