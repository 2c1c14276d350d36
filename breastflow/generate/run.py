"""Checkpoint -> synthetic set: the library side of ``breastflow generate``.

For every study of the chosen split(s): read the whole pre-contrast volume,
normalise it with the study's intensity unit under the run's own intensity rule
(the ``paired_phases`` spec saved in the checkpoint), run the generator slice
by slice (batched, no gradients, eval mode; :mod:`.volume`), invert the
normalisation with the *target* series' map (same study unit, its rescale),
round and clip into the real series' dtype, and write, verify and commit it as
``synthetic/<name>/studies/<study>/<series>`` (:mod:`.synthetic`) with the real
series' geometry, dtype and rescale attributes and PHI-free provenance
(checkpoint, model, epoch, step, dataset version). A joint model (output
channels 3, targets ``post_1..post_3``) writes one series per target.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from breastflow.data.datasets.paired import PairedPhasesDataset, PairedPhasesSpec
from breastflow.data.slice_choice import SliceChoice
from breastflow.generate.config import GenerateConfig, GenerateResult, GenerateSplit
from breastflow.generate.synthetic import (
    source_fingerprint,
    synthetic_location,
    write_synthetic_series,
)
from breastflow.generate.volume import generate_volume
from breastflow.models.base import GanModel
from breastflow.store import layout
from breastflow.store.catalog import read_catalog
from breastflow.store.commit import read_commit
from breastflow.store.fs import StoreLocation
from breastflow.store.zarr_io import series_attrs

#: The dataset family whose checkpoints generate maps pre -> post with.
PAIRED_DATASET = "paired_phases"


class GenerateError(ValueError):
    """Generation cannot run with this checkpoint/store/split; the message says what and how to fix it."""


@dataclass(frozen=True)
class GeneratorSource:
    """PHI-free provenance of a generator, stored with every synthetic series.

    Attributes:
        checkpoint: checkpoint URI (relative to the store when it lies inside it).
        model: registry name of the family; run: training run name.
        epoch, step: counters of the checkpoint.
        dataset_version: version of the data it was trained on.
    """

    checkpoint: str
    model: str
    run: str
    epoch: int
    step: int
    dataset_version: str


def paired_spec_of(train_run: dict, where: str, model: str) -> PairedPhasesSpec:
    """The ``paired_phases`` spec a checkpoint's run trained with (source, targets, intensity rule, image size).

    Raises:
        GenerateError: the run trained on another dataset family or recorded no spec.
    """
    dataset = train_run.get("dataset")
    if dataset != PAIRED_DATASET or "dataset_spec" not in train_run:
        raise GenerateError(
            f"checkpoint {where} (model {model!r}) was trained on dataset {dataset!r}; breastflow generate maps "
            f"pre -> post-contrast and needs a checkpoint of an image-to-image model trained on {PAIRED_DATASET!r} "
            "(e.g. breastflow train pix2pixhd STORE)")
    return PairedPhasesSpec.model_validate(train_run["dataset_spec"])


def _relative_uri(uri: str, loc: StoreLocation) -> str:
    return uri[len(loc.url) + 1:] if uri.startswith(loc.url + "/") else uri


def generate_synthetic(config: GenerateConfig) -> GenerateResult:
    """Load a checkpoint and write the synthetic set of ``config.split`` (see the module docstring).

    Raises:
        breastflow.train.checkpoint.CheckpointError: no readable checkpoint at ``config.checkpoint``.
        breastflow.train.checkpoint.CheckpointMismatchError: the checkpoint is not of ``config.model``.
        GenerateError: not a ``paired_phases`` image-to-image checkpoint; no studies in the split.
        breastflow.data.datasets.paired.MissingPhaseError: a study lacks the source or a target phase.
    """
    from breastflow.train.checkpoint import load_checkpoint

    loc = StoreLocation.from_url(config.store)
    model, meta = load_checkpoint(config.checkpoint, expect_model=config.model, device=config.device)
    spec = paired_spec_of(meta.train_run, meta.uri, meta.model)
    run = str(meta.train_run.get("run", "run"))
    checkpoint = _relative_uri(meta.uri, loc)
    source = GeneratorSource(checkpoint=checkpoint, model=meta.model, run=run, epoch=meta.epoch, step=meta.step,
                             dataset_version=meta.dataset_version)
    name = config.name or layout.check_name(f"{meta.model}-{run}-e{meta.epoch}", "synthetic set name")
    return generate_with_model(model, spec, loc, config.split, name, source, config.batch, config.nifti_dir)


def _datasets(loc: StoreLocation, spec: PairedPhasesSpec, split: GenerateSplit) -> list[PairedPhasesDataset]:
    """One whole-volume dataset per catalog split covered (its reader and intensity maps are what we use)."""
    catalog = read_catalog(loc)
    if catalog.empty:
        raise GenerateError(f"store {loc.url} has no committed series (is it a breastflow store?)")
    present = set(catalog.split.unique())
    whole = spec.model_copy(update={"slices": SliceChoice.ALL, "augment": None, "require_all": True})
    out = []
    for s in split.splits():
        if s.value not in present:
            continue
        out.append(PairedPhasesDataset(loc.url, whole.model_copy(update={"split": s})))
    if not out:
        raise GenerateError(f"store {loc.url} has no {split.value} studies (splits present: "
                            f"{', '.join(sorted(present))}); choose --split with studies in it")
    return out


def generate_with_model(model: GanModel, spec: PairedPhasesSpec, loc: StoreLocation, split: GenerateSplit,
                        name: str, source: GeneratorSource, batch: int = 8,
                        nifti_dir: Path | None = None) -> GenerateResult:
    """Write the synthetic set ``name`` of ``split`` with an already loaded ``model``.

    Args:
        model: image-to-image family (``generate(image)``); its output channels = ``len(spec.targets)``.
        spec: the run's ``paired_phases`` spec (source, targets, intensity rule, image size).
        loc: the store; split: studies to generate; name: the synthetic set.
        source: provenance stored with every series.
        batch: slices per generator call.
        nifti_dir: also export each synthetic series as ``<nifti_dir>/<name>/<study>_<series>.nii.gz``.

    Raises:
        GenerateError: no studies in ``split``, or a generator/target channel mismatch.
        breastflow.data.datasets.paired.MissingPhaseError: a study lacks the source or a target phase.
    """
    name = layout.check_name(name, "synthetic set name")
    datasets = _datasets(loc, spec, split)
    provenance = {"kind": "synthetic", "set": name, "source_series": spec.source, **asdict(source)}
    studies: list[str] = []
    nifti: list[str] = []
    slices = 0
    for dataset in datasets:
        for study in dataset.studies:
            z = dataset.reader.shape(study, spec.source)[0]
            pre = dataset.reader.read_slices(study, spec.source, list(range(z)))
            normalised = dataset.intensity_map(study, spec.source).normalise(pre)
            try:
                out = generate_volume(model, normalised, len(spec.targets), spec.image_size, batch)
            except ValueError as err:
                raise GenerateError(f"study {study}: {err}") from err
            real_source = read_commit(loc, study, spec.source)
            fingerprint = source_fingerprint(source.checkpoint, source.epoch, source.step,
                                             real_source.content_hash if real_source else "")
            for k, target in enumerate(spec.targets):
                real = read_commit(loc, study, target)
                if real is None:  # the dataset checked the catalog; a marker deleted since is a changed store
                    raise GenerateError(f"study {study}: series {target!r} is not committed in {loc.url}")
                attrs = series_attrs(loc, study, target).get("breastflow", {})
                raw = dataset.intensity_map(study, target).denormalise(out[k], np.dtype(real.dtype))
                write_synthetic_series(loc, name, real, attrs, raw, provenance, fingerprint)
                if nifti_dir is not None:
                    from breastflow.generate.nifti import export_nifti

                    path = Path(nifti_dir) / name / f"{study}_{target}.nii.gz"
                    nifti.append(str(export_nifti(synthetic_location(loc, name), study, target, path)))
            studies.append(study)
            slices += z
    return GenerateResult(name=name, uri=synthetic_location(loc, name).url, series=list(spec.targets),
                          studies=studies, slices=slices, checkpoint=source.checkpoint, model=source.model,
                          epoch=source.epoch, dataset_version=source.dataset_version, nifti=nifti)
