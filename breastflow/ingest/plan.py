"""Plan an ingest: what is in the source, what is already committed, what must be written.

Planning reads headers only. It groups files into series and studies by UID,
classifies each study's series, pseudonymises identifiers with the secret key
and compares each series' source fingerprint with its commit marker: a series
whose marker has the same fingerprint is skipped (idempotent), a new or
changed one becomes a :class:`SeriesJob` (incremental).

Annotations (:mod:`breastflow.ingest.annotations`) are matched to studies here,
in memory (StudyInstanceUID or PatientID), and become PHI-free
:class:`~breastflow.ingest.annotation_job.AnnotationJob` s, skipped the same way
when their marker's fingerprint (content + annotated images) is unchanged.
"""

from __future__ import annotations

import datetime as dt
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING

from breastflow.deid.attributes import deidentify_series_attrs
from breastflow.dicom.classify import AcceptPolicy, ClassifiedSeries, SeriesRole, classify_study
from breastflow.dicom.discover import discover, probe_headers
from breastflow.dicom.errors import (
    IngestError,
    IngestProblem,
    MissingPatientId,
    MixedClassicEnhanced,
    NoFramePositions,
    Reason,
)
from breastflow.dicom.header import ENHANCED_SOP_CLASSES, InstanceHeader
from breastflow.dicom.mosaic import mosaic_problem, unmosaic_series
from breastflow.dicom.multiphase import split_multiphase
from breastflow.dicom.series import SeriesGroup, StudyGroup, group_series, group_studies
from breastflow.ingest.incomplete import quarantine_incomplete, screen_probed
from breastflow.ingest.pseudonyms import Pseudonymiser
from breastflow.ingest.report import ANNOTATION_ENTRY, Outcome, SeriesOutcome
from breastflow.store.annotation_commit import AnnotationRecord, read_annotation_commits
from breastflow.store.commit import read_commits
from breastflow.store.fs import StoreLocation
from breastflow.store.layout import check_name

if TYPE_CHECKING:  # imported where used: a worker unpickling a SeriesJob imports this module,
    # and the annotation modules pull in pandas/nibabel (~0.3 s per fresh worker process)
    from breastflow.ingest.annotation_job import AnnotationJob
    from breastflow.ingest.annotations import AnnotationReason, AnnotationSource

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
        annotation_jobs: studies whose annotations are stored once their series are in.
    """

    jobs: list[SeriesJob] = field(default_factory=list)
    outcomes: list[SeriesOutcome] = field(default_factory=list)
    n_files: int = 0
    annotation_jobs: list[AnnotationJob] = field(default_factory=list)


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


def placement_problem(group: SeriesGroup) -> str | None:
    """Why an enhanced multi-frame series cannot be placed in space from its headers, or ``None``.

    Enhanced objects carry each frame's position in its PlanePositionSequence.
    Without it the slice order would have to be guessed from the frame order,
    which the standard does not make spatial, so such a series is quarantined
    (``no-frame-positions``) at planning with what is present and missing.
    """
    if group.is_projection or not group.is_enhanced:
        return None
    frames = group.frames
    unplaced = sum(f.position is None for f in frames)
    if not unplaced:
        return None
    header = group.first
    step = header.spacing_between_slices_mm or header.slice_thickness_mm
    has = {"a shared PlaneOrientation": frames[0].orientation is not None,
           "PixelMeasures (pixel spacing)": frames[0].pixel_spacing is not None,
           f"a slice step ({step:g} mm)" if step else "a slice step": bool(step)}
    present = [name for name, ok in has.items() if ok]
    absent = [name for name, ok in has.items() if not ok]
    found = f"has {', '.join(present)}" if present else "has no functional-group geometry"
    lacking = f"; also lacks {', '.join(absent)}" if absent and present else ""
    return (f"enhanced multi-frame object: {unplaced} of {len(frames)} frames carry no per-frame "
            f"PlanePositionSequence; it {found}{lacking}. Frame positions (and so the slice order) would "
            "have to be guessed from the frame order, so the series is not ingested; re-export it with "
            "per-frame plane positions or as single-frame MR")


def series_problem(group: SeriesGroup) -> IngestError | None:
    """Why a series cannot be read as one volume, known from its headers alone, or ``None``.

    Checked at planning, before any pixel is read: a Siemens mosaic that could
    not be un-mosaicked (``mosaic-unsupported``), classic single-frame and enhanced multi-frame
    objects sharing one SeriesInstanceUID (``mixed-classic-enhanced``: two
    exports of one acquisition, never merged or picked from), an enhanced
    object without per-frame positions (``no-frame-positions``).
    """
    mosaic = mosaic_problem(group)
    if mosaic is not None:
        return mosaic
    enhanced = sum(h.sop_class_uid in ENHANCED_SOP_CLASSES for h in group.headers)
    if 0 < enhanced < len(group.headers):
        return MixedClassicEnhanced(
            f"{len(group.headers) - enhanced} classic single-frame and {enhanced} enhanced multi-frame objects "
            "share one SeriesInstanceUID (classic and enhanced exports of the same acquisition?); neither is "
            "picked, so the series is not ingested; send one of the two exports", group.locator)
    why = placement_problem(group)
    return NoFramePositions(why, group.locator) if why else None


def plan_ingest(source: str, loc: StoreLocation, pseudo: Pseudonymiser, source_options: dict | None = None,
                probe_batch: int = 256, probe_map: ProbeMap | None = None,
                annotations: AnnotationSource | None = None, accept: AcceptPolicy = AcceptPolicy.BREAST
                ) -> IngestPlan:
    """Work out what to ingest from ``source`` into the store at ``loc``.

    Each study is planned on its own (:func:`plan_study`): a study that cannot be
    planned (no PatientID, or any error while classifying, pseudonymising or
    matching its annotation) is quarantined with its reason and the rest of the
    batch is planned as usual.

    Args:
        source: local folder or URL of the landing zone.
        loc: the store.
        pseudo: keyed pseudonymiser (holds the secret key).
        source_options: fsspec options for the source.
        probe_batch: files per probe batch; probe_map: see :func:`probe_in_batches`.
        annotations: lesion annotations to match to the studies (``None``: none).
        accept: which series may be stored (``BREAST``: only with breast evidence; ``ANY``).

    Raises:
        FileNotFoundError: ``source`` does not exist.
    """
    paths = discover(source, source_options)
    headers, problems = probe_in_batches(paths, probe_batch, source_options, probe_map)
    headers, problems, rejected = screen_probed(headers, problems, source_options)  # duplicates; lost files
    plan = IngestPlan(n_files=len(paths))
    plan.outcomes.extend(_problem_outcome(p, pseudo) for p in problems)
    committed = {(r.study, r.series): r for r in read_commits(loc)}
    committed_annotations = {r.study: r for r in read_annotation_commits(loc)} if annotations else {}
    # Siemens mosaics cut into their slices, then one series per dynamic phase
    studies = group_studies(split_multiphase(unmosaic_series(group_series(headers), source_options)))
    studies_per_patient = Counter(s.patient_id for s in studies)
    for study in studies:
        scratch = IngestPlan()  # a study lands in the plan whole or not at all
        try:
            plan_study(study, pseudo, committed, committed_annotations, annotations, scratch,
                       studies_per_patient[study.patient_id], accept)
            quarantine_incomplete(scratch, study, rejected, pseudo)  # never commit a series that lost files
        except Exception as err:  # noqa: BLE001 - one bad study never stops the batch
            plan.outcomes.append(study_problem_outcome(study, err, pseudo))
            continue
        plan.jobs.extend(scratch.jobs)
        plan.outcomes.extend(scratch.outcomes)
        plan.annotation_jobs.extend(scratch.annotation_jobs)
    return plan


def plan_study(study: StudyGroup, pseudo: Pseudonymiser, committed: dict, committed_annotations: dict,
               annotations: AnnotationSource | None, plan: IngestPlan, patient_studies: int,
               accept: AcceptPolicy = AcceptPolicy.BREAST) -> None:
    """Classify one study and schedule, skip, ignore or quarantine its series and annotation.

    Args:
        study: the grouped study (raw identifiers in memory only).
        pseudo: keyed pseudonyms; committed, committed_annotations: markers in the store.
        annotations: loaded annotations (``None``: none); plan: receives this study's entries.
        patient_studies: studies of this PatientID in the batch.
        accept: which series may be stored (see :class:`~breastflow.dicom.classify.AcceptPolicy`).

    Raises:
        MissingPatientId: the study has no PatientID (empty or absent).
        Exception: anything else that goes wrong while planning this study; the
            caller quarantines the study (``study-planning-error``) and goes on.
    """
    if not study.patient_id.strip() or any(not s.patient_id.strip() for s in study.series):
        raise MissingPatientId("the study has no PatientID (empty or absent), so it cannot be pseudonymised "
                               "to a patient; set PatientID in the export and re-send the study",
                               study_where(study))
    study_pseudonym = pseudo.study(study.study_uid)
    unplaceable = {s.series_uid: why for s in study.series if (why := series_problem(s))}
    try:
        classified = classify_study(study, accept)
    except IngestError as err:
        problem = err.to_problem()
        if unplaceable:
            problem = replace(problem, message=problem.message + "; " + "; ".join(
                f"{s.locator}: {unplaceable[s.series_uid].message}" for s in study.series
                if s.series_uid in unplaceable))
        plan.outcomes.append(_problem_outcome(problem, pseudo, study_pseudonym))
        return
    used: set[str] = set()
    planned: dict[str, str] = {}
    patient = pseudo.patient(study.patient_id)
    reference = next((c.series.acquisition_start for c in classified if c.role is SeriesRole.PRE), None)
    for item in classified:
        series_error = unplaceable.get(item.series.series_uid)
        if series_error and item.role is not SeriesRole.UNKNOWN:
            where = item.series.locator
            plan.outcomes.append(SeriesOutcome(
                outcome=Outcome.QUARANTINED, study=study_pseudonym, series=series_name(item),
                reason=series_error.reason.value, where=where, where_ref=pseudo.path_ref(where),
                message=series_error.message))
            continue
        name_fp = plan_series(item, study_pseudonym, patient, pseudo, committed, plan, used, reference)
        if name_fp is not None:
            planned[name_fp[0]] = name_fp[1]
    if annotations is not None:
        plan_annotation(study, study_pseudonym, patient, planned, annotations, pseudo, committed_annotations,
                        plan, patient_studies)


def study_where(study: StudyGroup) -> str:
    """PHI-free locator of a study for messages: its series count and first series' locator (a path)."""
    if not study.series:
        return "study with no series"
    return f"study with {len(study.series)} series, first {study.series[0].locator}"


def study_problem_outcome(study: StudyGroup, err: Exception, pseudo: Pseudonymiser) -> SeriesOutcome:
    """The quarantine entry of a study whose planning raised ``err``.

    An :class:`~breastflow.dicom.errors.IngestError` keeps its reason (e.g.
    ``missing-patient-id``); anything else is ``study-planning-error`` with the
    error's type and text, from which the study's raw identifiers (PatientID,
    UIDs) are blanked so no header value reaches the report.
    """
    where = study_where(study)
    try:
        study_pseudonym = pseudo.study(study.study_uid)
    except ValueError:  # no StudyInstanceUID: named by its first file only
        study_pseudonym = ""
    if isinstance(err, IngestError):
        reason, message = err.reason, err.message
    else:
        text = str(err)
        raw = {study.patient_id, study.study_uid} | {s.series_uid for s in study.series} | {
            h.sop_instance_uid for s in study.series for h in s.headers}
        for value in sorted((v.strip() for v in raw if v and v.strip()), key=len, reverse=True):
            text = text.replace(value, "<identifier>")
        reason = Reason.STUDY_PLANNING_ERROR
        message = (f"planning this study failed ({type(err).__name__}: {text[:300]}); the study is not "
                   "ingested, the rest of the batch is")
    if study_pseudonym:
        message = f"study {study_pseudonym}: {message}"
    return SeriesOutcome(outcome=Outcome.QUARANTINED, study=study_pseudonym, reason=reason.value, where=where,
                         where_ref=pseudo.path_ref(where), message=message)


def plan_annotation(study: StudyGroup, study_pseudonym: str, patient: str, planned: dict[str, str],
                    source: AnnotationSource, pseudo: Pseudonymiser, committed: dict[str, AnnotationRecord],
                    plan: IngestPlan, patient_studies: int) -> None:
    """Match one study's annotation and schedule, skip or quarantine it.

    Args:
        study: the grouped study (raw UIDs/PatientID used for matching only).
        study_pseudonym, patient: pseudonyms.
        planned: store name -> source fingerprint of the study's series that are
            in the store or scheduled now.
        source: loaded annotations; pseudo: keyed pseudonyms.
        committed: annotation markers already in the store, by study.
        plan: receives the job or outcome.
        patient_studies: studies of this PatientID in the batch (a table row keyed by
            patient is ambiguous when > 1).
    """
    from breastflow.ingest.annotation_job import AnnotationJob
    from breastflow.ingest.annotations import (
        AnnotationError,
        AnnotationFormat,
        AnnotationReason,
        annotation_digest,
    )

    annotation = source.match(study.study_uid, study.patient_id)
    if annotation is None:
        return
    where = annotation.where
    ref = pseudo.path_ref(where)

    def reject(reason: AnnotationReason, message: str) -> None:
        plan.outcomes.append(SeriesOutcome(outcome=Outcome.QUARANTINED, study=study_pseudonym,
                                           series=ANNOTATION_ENTRY, reason=reason.value, where=where,
                                           where_ref=ref, message=message))

    if annotation.problem:
        return reject(AnnotationReason.INVALID, annotation.problem)
    if source.format is AnnotationFormat.DUKE_TABLE and patient_studies > 1:
        return reject(AnnotationReason.AMBIGUOUS, f"the table's patient has {patient_studies} studies in this "
                      "batch; boxes keyed by patient cannot be assigned to one of them")
    referenced = annotation.series or tuple(sorted(planned))
    missing = [name for name in referenced if name not in planned]
    if missing:
        return reject(AnnotationReason.NO_IMAGE, f"annotated series {', '.join(missing)} not found among this "
                      f"study's ingestible series ({', '.join(sorted(planned)) or 'none'})")
    try:
        digest = annotation_digest(annotation, source.storage_options)
    except AnnotationError as err:
        return reject(err.reason, err.message)
    images = {name: planned[name] for name in referenced}
    fingerprint = pseudo.fingerprint([f"image:{k}={v}" for k, v in sorted(images.items())]
                                     + [f"content:{digest}", f"format:{source.format.value}"])
    previous = committed.get(study_pseudonym)
    if previous is not None and previous.source_fingerprint == fingerprint:
        plan.outcomes.append(SeriesOutcome(outcome=Outcome.SKIPPED, study=study_pseudonym, series=ANNOTATION_ENTRY,
                                           where=where, where_ref=ref,
                                           n_slices=previous.mask_shape[0] if previous.mask_shape else 0))
        return None
    plan.annotation_jobs.append(AnnotationJob(
        study=study_pseudonym, patient=patient, boxes=annotation.boxes, mask_url=annotation.mask_url,
        image_fingerprints=images, source_format=source.format.value, fingerprint=fingerprint,
        where=where, where_ref=ref))
    return None


def plan_series(item: ClassifiedSeries, study: str, patient: str, pseudo: Pseudonymiser,
                committed: dict, plan: IngestPlan, used: set[str], reference: dt.datetime | None
                ) -> tuple[str, str] | None:
    """Decide one classified series: ignore (unrecognised), skip (committed) or schedule.

    A role seen twice in one study (e.g. two T2 series) gets ``_2``, ``_3`` ...
    in study order, so names stay deterministic.

    Returns:
        ``(store name, source fingerprint)`` of a skipped or scheduled series; ``None`` if ignored.
    """
    group: SeriesGroup = item.series
    where = group.locator
    if item.role is SeriesRole.UNKNOWN:
        plan.outcomes.append(SeriesOutcome(outcome=Outcome.IGNORED, study=study, series=series_name(item),
                                           reason="unrecognised-series", where=where,
                                           where_ref=pseudo.path_ref(where), message=item.reason))
        return None
    name = base = series_name(item)
    suffix = 1
    while name in used:
        suffix += 1
        name = f"{base}_{suffix}"
    used.add(name)
    fingerprint = pseudo.fingerprint(group.source_keys)
    previous = committed.get((study, name))
    if previous is not None and previous.source_fingerprint == fingerprint:
        plan.outcomes.append(SeriesOutcome(outcome=Outcome.SKIPPED, study=study, series=name,
                                           where=where, where_ref=pseudo.path_ref(where),
                                           n_slices=previous.shape[0], source_bytes=previous.source_bytes))
        return name, fingerprint
    header = group.first
    dicom_attrs = deidentify_series_attrs(group, pseudo.key, reference, item)
    # pixel format from the header (whitelisted): MONOCHROME1 must be known to readers
    dicom_attrs.update(photometric=header.photometric, bits_stored=header.bits_stored)
    plan.jobs.append(SeriesJob(study=study, patient=patient, series=name,
                               source_series=pseudo.series(group.series_uid), fingerprint=fingerprint,
                               classified=item, dicom_attrs=dicom_attrs,
                               where=where, where_ref=pseudo.path_ref(where)))
    return name, fingerprint
