"""Write a whole phantom cohort: DICOM studies plus ground-truth tables.

Layout of ``out_dir`` (documented in docs/phantom.md)::

    phantom_config.json   the validated PhantomConfig
    cohort.csv            one row per study
    lesions.csv           one row per lesion (Duke annotation-table style)
    phi.json              every PHI value written, per study
    dicom/<study_id>/<series_number>/<instance:04d>.dcm
    truth/<study_id>_lesion_mask.nii.gz   (MRI)

Studies are independent (study ``i`` seeds from ``SeedSequence([seed, i])``),
so they may be written by a process pool in any order; the tables are sorted
by study, so the same config always gives byte-identical files.
"""

from __future__ import annotations

import json
import os
import shutil
from collections.abc import Iterator
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from breastflow.phantom.config import Modality, PhantomConfig, Profile, TransferSyntax
from breastflow.phantom.records import StudyResult
from breastflow.phantom.truth import LESION_COLUMNS

CONFIG_FILE = "phantom_config.json"
COHORT_FILE = "cohort.csv"
LESIONS_FILE = "lesions.csv"
PHI_FILE = "phi.json"
# Everything a cohort writes at the top of its folder (and removes when re-run there).
OUTPUTS = (CONFIG_FILE, COHORT_FILE, LESIONS_FILE, PHI_FILE, "dicom", "truth")


# Peak memory of one study being written (realistic MRI: ~9 float32 tissue maps plus
# the DCE model of a 512 x 512 x 180 grid), to cap the default worker count.
STUDY_PEAK_BYTES = {Profile.TINY: 200 << 20, Profile.REALISTIC: 5 << 30}


class OutputFolderError(ValueError):
    """The output folder cannot be used for a phantom cohort."""


@dataclass(frozen=True)
class CohortSummary:
    """What :func:`write_cohort` wrote.

    Attributes:
        out_dir: the cohort folder.
        n_studies, n_lesions, n_files: counts.
    """

    out_dir: Path
    n_studies: int
    n_lesions: int
    n_files: int


def available_cpus() -> int:
    """CPU cores this process may run on (its affinity mask, not the machine's core count)."""
    count = getattr(os, "process_cpu_count", None)  # Python >= 3.13
    if count is not None:
        return max(1, count() or 1)
    if hasattr(os, "sched_getaffinity"):
        return max(1, len(os.sched_getaffinity(0)))
    return max(1, os.cpu_count() or 1)


def _available_memory() -> int | None:
    try:
        with open("/proc/meminfo") as f:
            for line in f:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return None


def default_workers(config: PhantomConfig) -> int:
    """Processes to use when the user does not say: one per available core, at most one
    per study, and no more than the available memory holds (realistic studies need GBs)."""
    workers = min(available_cpus(), config.studies)
    memory = _available_memory()
    if memory is not None:
        workers = min(workers, max(1, memory // STUDY_PEAK_BYTES[config.profile]))
    return max(1, workers)


def syntax_for(config: PhantomConfig, study_index: int) -> TransferSyntax:
    """Transfer syntax of study ``study_index``: the configured syntaxes, cycled."""
    return config.transfer_syntaxes[study_index % len(config.transfer_syntaxes)]


def write_study(out_dir: Path, study_index: int, config: PhantomConfig) -> StudyResult:
    """Write one study of the cohort, dispatching on the modality."""
    syntax = syntax_for(config, study_index)
    if config.modality is Modality.MAMMO:
        from breastflow.phantom.mammo import write_mammo_study

        return write_mammo_study(out_dir, study_index, config, syntax)
    from breastflow.phantom.mri import write_mri_study

    return write_mri_study(out_dir, study_index, config, syntax)


def prepare_output(out_dir: Path) -> None:
    """Check ``out_dir`` can take a cohort; clear an earlier cohort written there.

    A missing folder is created. An existing folder must be empty or hold an
    earlier phantom cohort (it has ``phantom_config.json`` and nothing but
    cohort outputs); then only the cohort outputs are removed.

    Raises:
        OutputFolderError: if ``out_dir`` is a file, not writable, or a non-empty
            folder that is not an earlier phantom cohort.
    """
    if out_dir.exists() and not out_dir.is_dir():
        raise OutputFolderError(f"{out_dir} exists and is not a folder")
    if out_dir.is_dir():
        entries = sorted(p.name for p in out_dir.iterdir())
        if entries:
            foreign = [e for e in entries if e not in OUTPUTS]
            if CONFIG_FILE not in entries or foreign:
                raise OutputFolderError(
                    f"{out_dir} is not empty and is not an earlier phantom output "
                    f"(found {', '.join(entries[:5])}{' ...' if len(entries) > 5 else ''}); "
                    "choose an empty or new folder")
            for name in entries:
                path = out_dir / name
                shutil.rmtree(path) if path.is_dir() else path.unlink()
    try:
        out_dir.mkdir(parents=True, exist_ok=True)
        probe = out_dir / ".write_test"
        probe.write_bytes(b"")
        probe.unlink()
    except OSError as exc:
        raise OutputFolderError(f"cannot write to {out_dir}: {exc.strerror or exc}") from exc


def _results(out_dir: Path, config: PhantomConfig, workers: int) -> Iterator[StudyResult]:
    indices = range(config.studies)
    if workers <= 1 or config.studies == 1:
        for i in indices:
            yield write_study(out_dir, i, config)
        return
    with ProcessPoolExecutor(max_workers=workers) as pool:
        yield from pool.map(write_study, [out_dir] * config.studies, indices, [config] * config.studies)


def write_cohort(out_dir: Path, config: PhantomConfig, workers: int = 1, progress: bool = False) -> CohortSummary:
    """Write the cohort described by ``config`` into ``out_dir``.

    The files do not depend on ``workers`` (each study seeds from its index).

    Args:
        out_dir: output folder (created; must be empty or an earlier phantom output).
        config: validated cohort configuration (saved as ``phantom_config.json``).
        workers: processes writing studies in parallel (1 = in this process; see
            :func:`default_workers` for a sensible choice).
        progress: show a tqdm progress bar.

    Raises:
        OutputFolderError: see :func:`prepare_output`.
        ValueError: if ``workers`` < 1.
    """
    if workers < 1:
        raise ValueError(f"workers must be >= 1, got {workers}")
    out_dir = Path(out_dir)
    prepare_output(out_dir)
    (out_dir / CONFIG_FILE).write_text(config.model_dump_json(indent=2) + "\n")
    results = _results(out_dir, config, workers)
    if progress:
        from tqdm import tqdm

        results = tqdm(results, total=config.studies, desc="phantom studies", unit="study")
    studies, lesions, phi, n_files = [], [], {}, 0
    for result in results:
        sid = str(result.study["study_id"])
        studies.append(result.study)
        lesions.extend(result.lesions)
        phi[sid] = {"phi_values": result.phi_values, "attributes": result.phi}
        n_files += result.n_files
    pd.DataFrame(studies).to_csv(out_dir / COHORT_FILE, index=False, lineterminator="\n")
    if config.modality is Modality.MRI:
        lesion_columns: list[str] | None = list(LESION_COLUMNS)
    else:  # the mammography writer defines its own columns; keep a header when there are none
        lesion_columns = None if lesions else ["study_id", "lesion_id", "class"]
    pd.DataFrame(lesions, columns=lesion_columns).to_csv(out_dir / LESIONS_FILE, index=False, lineterminator="\n")
    (out_dir / PHI_FILE).write_text(json.dumps(phi, indent=1, sort_keys=True) + "\n")
    return CohortSummary(out_dir=out_dir, n_studies=len(studies), n_lesions=len(lesions), n_files=n_files)
