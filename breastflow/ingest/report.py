"""The ingest report: what a run added, skipped and quarantined, and its exit status.

Two renderings exist on purpose:

* :meth:`IngestReport.to_operator_dict` - for the operator's terminal or a local
  file: includes source paths (the operator can read the landing zone anyway).
* :meth:`IngestReport.to_store_dict` - written into the store and into Prefect
  artifacts: source paths are replaced by keyed pseudonyms (folder names in a
  landing zone may well contain patient names), so it holds no PHI.
"""

from __future__ import annotations

import re
from collections import Counter
from dataclasses import asdict, dataclass, field
from enum import Enum, IntEnum


# anything that looks like a path or URL (contains a slash or backslash) in a message
_PATH = re.compile(r"\S*[/\\]\S*")
#: ``SeriesOutcome.series`` of a study's annotation entry (boxes + mask); counted apart from series.
ANNOTATION_ENTRY = "annotations"


class ExitStatus(IntEnum):
    """Process exit status of an ingest run."""

    SUCCESS = 0  # everything found was ingested or already in the store
    FAILURE = 1  # nothing could be ingested (or nothing was found)
    PARTIAL = 3  # some series landed, some input was quarantined or failed


class Outcome(str, Enum):
    """What happened to one series."""

    NEW = "new"
    SKIPPED = "skipped"
    QUARANTINED = "quarantined"
    FAILED = "failed"  # not the input's fault (storage down, worker lost); retried next run
    IGNORED = "ignored"  # recognised as not part of the protocol (localizer, unknown series); recorded


@dataclass(frozen=True)
class SeriesOutcome:
    """The result of one series (or one rejected file/study, with ``series`` empty).

    Attributes:
        outcome: see :class:`Outcome`.
        study: study pseudonym ("" when unknown, e.g. a non-DICOM file).
        series: role name ("" when unknown).
        reason: reason code for quarantined/failed entries ("" otherwise).
        where: source path or series locator (operator view only).
        where_ref: keyed pseudonym of ``where`` (store view).
        message: explanation (technical, no header values).
        n_slices: slices written (new entries); source_bytes: DICOM bytes read.
    """

    outcome: Outcome
    study: str = ""
    series: str = ""
    reason: str = ""
    where: str = ""
    where_ref: str = ""
    message: str = ""
    n_slices: int = 0
    source_bytes: int = 0


@dataclass
class IngestReport:
    """All outcomes of one run.

    Attributes:
        run_id: PHI-free run identifier.
        outcomes: one entry per series (and per rejected file or study).
        seconds: wall time of the run.
        executor: where the work ran (``in-process`` or ``dask``; "" when not run by ``run_ingest``).
    """

    run_id: str
    outcomes: list[SeriesOutcome] = field(default_factory=list)
    seconds: float = 0.0
    executor: str = ""

    def of(self, outcome: Outcome) -> list[SeriesOutcome]:
        """Entries with the given outcome."""
        return [o for o in self.outcomes if o.outcome is outcome]

    @property
    def new(self) -> list[SeriesOutcome]:
        return self.of(Outcome.NEW)

    @property
    def skipped(self) -> list[SeriesOutcome]:
        return self.of(Outcome.SKIPPED)

    @property
    def quarantined(self) -> list[SeriesOutcome]:
        return self.of(Outcome.QUARANTINED)

    @property
    def failed(self) -> list[SeriesOutcome]:
        return self.of(Outcome.FAILED)

    @property
    def ignored(self) -> list[SeriesOutcome]:
        return self.of(Outcome.IGNORED)

    def reason_counts(self) -> dict[str, int]:
        """Quarantined and failed entries per reason code."""
        return dict(sorted(Counter(o.reason for o in self.quarantined + self.failed).items()))

    def exit_status(self) -> ExitStatus:
        """0 full success, 3 partial success, 1 failure (nothing landed or nothing found)."""
        good = len(self.new) + len(self.skipped)
        bad = len(self.quarantined) + len(self.failed)
        if good == 0:
            return ExitStatus.FAILURE
        return ExitStatus.PARTIAL if bad else ExitStatus.SUCCESS

    def summary(self) -> dict:
        """Counts only (PHI-free); ``new``/``skipped`` count series, annotations are counted apart."""
        series_new = [o for o in self.new if o.series != ANNOTATION_ENTRY]
        series_skipped = [o for o in self.skipped if o.series != ANNOTATION_ENTRY]
        return {
            "run_id": self.run_id,
            "new": len(series_new),
            "skipped": len(series_skipped),
            "annotations_new": len(self.new) - len(series_new),
            "annotations_skipped": len(self.skipped) - len(series_skipped),
            "quarantined": len(self.quarantined),
            "failed": len(self.failed),
            "ignored": len(self.ignored),
            "reasons": self.reason_counts(),
            "slices_written": sum(o.n_slices for o in series_new),
            "source_bytes_ingested": sum(o.source_bytes for o in self.new),
            "seconds": round(self.seconds, 3),
            "executor": self.executor,
            "exit_status": int(self.exit_status()),
        }

    def to_operator_dict(self) -> dict:
        """Full report including source paths (for the operator; never written to the store)."""
        entries = [dict(asdict(o), outcome=o.outcome.value) for o in self.outcomes]
        return {**self.summary(), "entries": entries}

    def to_store_dict(self) -> dict:
        """PHI-free report: paths replaced by their keyed pseudonyms."""
        entries = []
        for o in self.outcomes:
            entry = dict(asdict(o), outcome=o.outcome.value)
            entry.pop("where")
            message = entry["message"].replace(o.where, f"<{o.where_ref}>") if o.where else entry["message"]
            entry["message"] = _PATH.sub("<path>", message)
            entries.append(entry)
        return {**self.summary(), "entries": entries}


def report_markdown(report: IngestReport) -> str:
    """A PHI-free Markdown summary of a run (for Prefect artifacts and chat ops).

    Only counts, reason codes, pseudonyms and path references appear.
    """
    summary = report.summary()
    lines = [
        f"# breastflow ingest `{report.run_id}`",
        "",
        "| new | skipped | quarantined | failed | ignored | slices written | MB ingested | seconds | exit |",
        "|---|---|---|---|---|---|---|---|---|",
        f"| {summary['new']} | {summary['skipped']} | {summary['quarantined']} | {summary['failed']} "
        f"| {summary['ignored']} | {summary['slices_written']} "
        f"| {summary['source_bytes_ingested'] / 1e6:.1f} | {summary['seconds']} | {summary['exit_status']} |",
    ]
    if summary["reasons"]:
        lines += ["", "## Quarantined or failed, by reason", "", "| reason | count |", "|---|---|"]
        lines += [f"| {reason} | {count} |" for reason, count in summary["reasons"].items()]
    return "\n".join(lines) + "\n"


#: Longest human reason shown per entry on the terminal (the full text is in ``--report``).
TERMINAL_REASON_CHARS = 160


def terminal_lines(report: IngestReport) -> list[str]:
    """One PHI-free line per quarantined, failed or ignored entry, for the operator's terminal.

    Each line names the outcome, the reason code, the study pseudonym and series
    name (or, for a file rejected before grouping, the keyed reference of its
    path) and a one-line human reason in which paths (which may hold UIDs or
    names) are replaced by their keyed references. ``--report`` keeps the full
    JSON with paths.

    Returns:
        Lines such as ``quarantined [missing-patient-id] stu-3f9a.../-: study stu-3f9a...: the study has ...``.
    """
    lines = []
    shown = (Outcome.QUARANTINED.value, Outcome.FAILED.value, Outcome.IGNORED.value)
    for entry in report.to_store_dict()["entries"]:
        if entry["outcome"] not in shown:
            continue
        who = f"{entry['study']}/{entry['series'] or '-'}" if entry["study"] else f"file {entry['where_ref'] or '?'}"
        text = " ".join(entry["message"].split())
        if len(text) > TERMINAL_REASON_CHARS:
            text = text[:TERMINAL_REASON_CHARS - 3].rstrip() + "..."
        lines.append(f"{entry['outcome']} [{entry['reason'] or '-'}] {who}: {text}")
    return lines


def report_table(report: IngestReport) -> list[dict]:
    """PHI-free rows (one per quarantined/failed/ignored entry) for a Prefect table artifact."""
    keep = ("outcome", "reason", "study", "series", "where_ref", "message")
    return [{k: entry[k] for k in keep} for entry in report.to_store_dict()["entries"]
            if entry["outcome"] in (Outcome.QUARANTINED.value, Outcome.FAILED.value, Outcome.IGNORED.value)]
