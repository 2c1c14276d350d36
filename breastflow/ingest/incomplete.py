"""Series that lost files before decoding are never committed short.

The probe rejects bad files one by one (a truncated edge slice parses its
header but its pixel data runs past the end); planning would then group the
remaining files into a series one slice short, with uniform spacing and
nothing visibly wrong. A file rejected because a slice's content is lost or
cannot be trusted (:data:`LOST_SLICE_REASONS`: ``truncated``,
``conflicting-duplicate``) whose header named its series (the memory-only
UIDs on :class:`~breastflow.dicom.errors.IngestProblem`) marks that series
incomplete. Its header, when it parsed whole, is still grouped and classified
with the series, so the series keeps its role and slice count (a short phase
would otherwise be taken for a different acquisition and shift the names of
the later phases); then the series' job, or its ``ignored`` entry, becomes an
``incomplete-series`` quarantine entry naming the reasons and the rejected
files. Files of other kinds in a series (a colour screenshot, a
presentation state) are rejected on their own and do not hold it back. Files
rejected before their header gave a Series UID (cut before it, not DICOM)
cannot be tied to a series and stay file-level entries only.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from typing import TYPE_CHECKING

from breastflow.dicom.duplicates import resolve_duplicates
from breastflow.dicom.errors import IncompleteSeries, IngestProblem, Reason
from breastflow.dicom.header import InstanceHeader
from breastflow.dicom.series import SeriesGroup, StudyGroup
from breastflow.ingest.pseudonyms import Pseudonymiser
from breastflow.ingest.report import Outcome, SeriesOutcome

if TYPE_CHECKING:
    from breastflow.ingest.plan import IngestPlan

#: Rejected files named in one message (the rest are counted).
MAX_NAMED = 10
#: File rejections that cost their series a slice (others are objects of another kind).
LOST_SLICE_REASONS = frozenset({Reason.TRUNCATED, Reason.CONFLICTING_DUPLICATE})

SeriesKey = tuple[str, str]


def screen_probed(headers: list[InstanceHeader], problems: list[IngestProblem], source_options: dict | None
                  ) -> tuple[list[InstanceHeader], list[IngestProblem], dict[SeriesKey, list[IngestProblem]]]:
    """Settle duplicated SOP instances and index the rejected files by series.

    Args:
        headers, problems: the probe's results.
        source_options: fsspec options (duplicates are read to compare pixels).

    Returns:
        (headers to group and classify: the good ones plus the whole headers of
        files that lost their slice, all file problems including
        ``conflicting-duplicate`` ones, lost files per (study UID, series UID):
        raw UIDs, memory only).
    """
    headers, conflicts = resolve_duplicates(headers, source_options)
    problems = [*problems, *conflicts]
    rejected = rejected_by_series(problems)
    placeholders = {p.header.path: p.header for lost in rejected.values() for p in lost if p.header is not None}
    return [*headers, *placeholders.values()], problems, rejected


def rejected_by_series(problems: Iterable[IngestProblem]) -> dict[SeriesKey, list[IngestProblem]]:
    """Lost-slice problems grouped by the (study UID, series UID) their header named; others left out."""
    out: dict[SeriesKey, list[IngestProblem]] = defaultdict(list)
    for problem in problems:
        if problem.series_uid and problem.reason in LOST_SLICE_REASONS:
            out[(problem.study_uid, problem.series_uid)].append(problem)
    return dict(out)


def incomplete_message(rejected: list[IngestProblem], n_kept: int, pseudo: Pseudonymiser) -> str:
    """What the operator reads: how many files were rejected, why, and which (path and its reference)."""
    reasons = sorted({p.reason.value for p in rejected})
    named = "; ".join(f"{p.reason.value}: {p.where} [{pseudo.path_ref(p.where)}]" for p in rejected[:MAX_NAMED])
    more = f"; and {len(rejected) - MAX_NAMED} more" if len(rejected) > MAX_NAMED else ""
    return (f"{len(rejected)} file(s) of this series were rejected before decoding ({', '.join(reasons)}): "
            f"{named}{more}. The series ({n_kept} other files) is not committed, so it is never stored with "
            "slices missing; fix or re-send those files and run the ingest again")


def lost_files(group: SeriesGroup, lost_in_study: dict[SeriesKey, list[IngestProblem]]) -> list[IngestProblem]:
    """The lost files of one series group (``[]``: none).

    Matched by the files' own Series UID, so the phases of a split multi-phase
    series are found too; a phase loses only the files whose headers it holds,
    unless a lost file's header did not parse (its phase is then unknown and
    every phase of the series counts it).
    """
    lost = lost_in_study.get((group.study_uid, group.first.series_uid), [])
    if lost and all(p.header is not None for p in lost):
        paths = set(group.files)
        return [p for p in lost if p.where in paths]
    return lost


def quarantine_incomplete(plan: IngestPlan, study: StudyGroup, rejected: dict[SeriesKey, list[IngestProblem]],
                          pseudo: Pseudonymiser) -> None:
    """Turn one study's planned entries of series that lost files into ``incomplete-series`` (in place).

    A job of such a series is withdrawn, and an ``ignored`` entry of one
    (e.g. taken for another acquisition because it is short) is replaced.
    Skipped series stay skipped: what the store holds was committed whole by
    an earlier run.

    Args:
        plan: the study's plan entries (from :func:`~breastflow.ingest.plan.plan_study`).
        study: the study (raw UIDs, memory only).
        rejected: from :func:`screen_probed`; pseudo: keyed path references.
    """
    lost_in_study = {key: lost for key, lost in rejected.items() if key[0] == study.study_uid}
    if not lost_in_study:
        return

    def entry(outcome_study: str, series: str, where: str, where_ref: str, group: SeriesGroup,
              lost: list[IngestProblem]) -> SeriesOutcome:
        n_kept = len(set(group.files) - {p.where for p in lost})
        error = IncompleteSeries(incomplete_message(lost, n_kept, pseudo), where)
        return SeriesOutcome(outcome=Outcome.QUARANTINED, study=outcome_study, series=series,
                             reason=error.reason.value, where=where, where_ref=where_ref, message=error.message)

    kept = []
    for job in plan.jobs:
        lost = lost_files(job.classified.series, lost_in_study)
        if lost:
            plan.outcomes.append(entry(job.study, job.series, job.where, job.where_ref, job.classified.series, lost))
        else:
            kept.append(job)
    plan.jobs[:] = kept
    by_locator = {g.locator: (g, lost) for g in study.series if (lost := lost_files(g, lost_in_study))}
    plan.outcomes[:] = [entry(o.study, o.series, o.where, o.where_ref, *by_locator[o.where])
                        if o.outcome is Outcome.IGNORED and o.where in by_locator else o for o in plan.outcomes]
