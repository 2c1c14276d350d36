"""Plan an ingest: what is in the source, what is already committed, what must be written.

Planning reads headers only. It groups files into series and studies by UID,
classifies each study's series, pseudonymises identifiers with the secret key
and compares each series' source fingerprint with its commit marker: a series
whose marker has the same fingerprint is skipped (idempotent), a new or
changed one becomes a :class:`SeriesJob` (incremental).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from breastflow.deid.attributes import deidentify_series_attrs
from breastflow.dicom.classify import ClassifiedSeries, SeriesRole, classify_study
from breastflow.dicom.discover import discover, probe_headers
from breastflow.dicom.errors import IngestError, IngestProblem
from breastflow.dicom.header import InstanceHeader
from breastflow.dicom.series import SeriesGroup, group_series, group_studies
from breastflow.ingest.pseudonyms import Pseudonymiser
from breastflow.ingest.report import Outcome, SeriesOutcome
from breastflow.store.commit import read_commits
from breastflow.store.fs import StoreLocation
from breastflow.store.layout import check_name

ProbeMap = Callable[[list[list[str]]], list[tuple[list[InstanceHeader], list[IngestProblem]]]]


@dataclass(frozen=True)
class SeriesJob:
    """One series to read, de-identify, write, verify and commit (runs on a Dask worker).

    Attributes:
        study, patient, series: study pseudonym, patient pseudonym, role name.
        source_series: pseudonym of the SeriesInstanceUID (provenance).
        fingerprint: keyed digest of the series' SOP Instance UIDs.
        classified: the classified series (headers, role, phase timing); holds
            raw UIDs in memory only.
        dicom_attrs: PHI-free header attributes from
            :func:`breastflow.deid.attributes.deidentify_series_attrs` (computed
            while planning, so the key never leaves the planning process).
        where, where_ref: series locator for the operator, and its pseudonym.
    """

    study: str
    patient: str
    series: str
    source_series: str
    fingerprint: str
    classified: ClassifiedSeries
    dicom_attrs: dict
    where: str
    where_ref: str

    @property
    def key(self) -> str:
        """Dask/Prefect key of this job (PHI-free)."""
        return f"ingest-{self.study}-{self.series}"


@dataclass
class IngestPlan:
    """The result of planning.

    Attributes:
        jobs: series to ingest now.
        outcomes: already decided entries (skipped, quarantined before pixels, ignored).
        n_files: candidate files found.
    """

    jobs: list[SeriesJob] = field(default_factory=list)
    outcomes: list[SeriesOutcome] = field(default_factory=list)
    n_files: int = 0


def series_name(classified: ClassifiedSeries) -> str:
    """The store name of a classified series (lower-case role name, e.g. ``mg_l_cc``)."""
    return check_name(classified.name.lower(), "series role")


def _problem_outcome(problem: IngestProblem, pseudo: Pseudonymiser, study: str = "") -> SeriesOutcome:
    return SeriesOutcome(outcome=Outcome.QUARANTINED, study=study, reason=problem.reason.value,
                         where=problem.where, where_ref=pseudo.path_ref(problem.where), message=problem.message)


def probe_in_batches(paths: Sequence[str], batch: int, source_options: dict | None,
                     probe_map: ProbeMap | None = None) -> tuple[list[InstanceHeader], list[IngestProblem]]:
    """Probe headers in batches, optionally mapped over a cluster.

    Args:
        paths: candidate files.
        batch: files per batch.
        source_options: fsspec options for the source.
        probe_map: maps a list of path batches to a list of probe results (e.g. on
            Dask); ``None`` probes here.
    """
    batches = [list(paths[i:i + batch]) for i in range(0, len(paths), batch)]
    if probe_map is None:
        results = [probe_headers(b, source_options) for b in batches]
    else:
        results = probe_map(batches)
    headers = [h for found, _ in results for h in found]
    problems = [p for _, found in results for p in found]
    return headers, problems


def plan_ingest(source: str, loc: StoreLocation, pseudo: Pseudonymiser, source_options: dict | None = None,
                probe_batch: int = 256, probe_map: ProbeMap | None = None) -> IngestPlan:
    """Work out what to ingest from ``source`` into the store at ``loc``.

    Args:
        source: local folder or URL of the landing zone.
        loc: the store.
        pseudo: keyed pseudonymiser (holds the secret key).
        source_options: fsspec options for the source.
        probe_batch: files per probe batch; probe_map: see :func:`probe_in_batches`.

    Raises:
        FileNotFoundError: ``source`` does not exist.
    """
    paths = discover(source, source_options)
    headers, problems = probe_in_batches(paths, probe_batch, source_options, probe_map)
    plan = IngestPlan(n_files=len(paths))
    plan.outcomes.extend(_problem_outcome(p, pseudo) for p in problems)
    committed = {(r.study, r.series): r for r in read_commits(loc)}
    for study in group_studies(group_series(headers)):
        study_pseudonym = pseudo.study(study.study_uid)
        try:
            classified = classify_study(study)
        except IngestError as err:
            plan.outcomes.append(_problem_outcome(err.to_problem(), pseudo, study_pseudonym))
            continue
        used: set[str] = set()
        reference = next((c.series.acquisition_start for c in classified if c.role is SeriesRole.PRE), None)
        for item in classified:
            plan_series(item, study_pseudonym, pseudo.patient(study.patient_id), pseudo, committed, plan, used,
                        reference)
    return plan


def plan_series(item: ClassifiedSeries, study: str, patient: str, pseudo: Pseudonymiser,
                committed: dict, plan: IngestPlan, used: set[str], reference: dt.datetime | None) -> None:
    """Decide one classified series: ignore (unrecognised), skip (committed) or schedule.

    A role seen twice in one study (e.g. two T2 series) gets ``_2``, ``_3`` ...
    in study order, so names stay deterministic.
    """
    group: SeriesGroup = item.series
    where = group.locator
    if item.role is SeriesRole.UNKNOWN:
        plan.outcomes.append(SeriesOutcome(outcome=Outcome.IGNORED, study=study, series=series_name(item),
                                           reason="unrecognised-series", where=where,
                                           where_ref=pseudo.path_ref(where), message=item.reason))
        return
    name = base = series_name(item)
    suffix = 1
    while name in used:
        suffix += 1
        name = f"{base}_{suffix}"
    used.add(name)
    fingerprint = pseudo.fingerprint([h.sop_instance_uid for h in group.headers])
    previous = committed.get((study, name))
    if previous is not None and previous.source_fingerprint == fingerprint:
        plan.outcomes.append(SeriesOutcome(outcome=Outcome.SKIPPED, study=study, series=name,
                                           where=where, where_ref=pseudo.path_ref(where),
                                           n_slices=previous.shape[0], source_bytes=previous.source_bytes))
        return
    plan.jobs.append(SeriesJob(study=study, patient=patient, series=name,
                               source_series=pseudo.series(group.series_uid), fingerprint=fingerprint,
                               classified=item,
                               dicom_attrs=deidentify_series_attrs(group, pseudo.key, reference, item),
                               where=where, where_ref=pseudo.path_ref(where)))
