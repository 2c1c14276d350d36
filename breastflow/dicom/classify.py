"""Classify the series of a study: pre-contrast, post-contrast phase k, T2, mammography view.

Rules (in order; the first that applies decides; see docs/ingest_reading.md):

1. Mammography (modality ``MG`` or a mammography SOP class): one image per
   series with ViewPosition CC or MLO and ImageLaterality L or R -> ``MAMMO``;
   anything else -> ``UNKNOWN`` with the reason.
2. Non-MR modalities -> ``UNKNOWN`` ("not part of the breast protocol").
3. MR localizers, diffusion-weighted series (ImageType DIFFUSION, a b-value
   > 0, DTI/DWI descriptions) and derived images (ImageType DERIVED,
   subtraction/MIP descriptions) -> ``UNKNOWN``.
4. Breast evidence (:mod:`breastflow.dicom.breast_evidence`): with
   :attr:`AcceptPolicy.BREAST` (the default) an MR series without any evidence
   code, or whose BodyPartExamined names another body part, is ``UNKNOWN``
   ("no breast evidence"); the codes found are kept in
   :attr:`ClassifiedSeries.evidence`.
5. MR T2-weighted: description hint (T2, STIR, TIRM) or long TE and TR
   (TE >= 60 ms and TR >= 1000 ms) -> ``T2``.
6. MR dynamic candidates: a dynamic/contrast description hint or a
   ContrastBolusAgent; a temporal position alone only when the study has no
   such series (Siemens XA and Philips put one on every series). Others -> ``UNKNOWN``.
7. The pre-contrast series is the latest candidate whose description says
   "pre" (and that has no contrast agent); failing a hint, the earliest
   candidate without contrast agent and without a post-contrast hint.
   No pre in an MR study with breast evidence -> :class:`~breastflow.dicom.errors.NoPreContrast`,
   whose message counts what was seen.
8. Candidates acquired after the pre with the same matrix, frame count and
   slice normal are ``POST`` phases ``k = 1, 2, ...`` in order of acquisition
   time, with ``seconds_after_pre``; the rest are ``UNKNOWN`` with the reason.

Timing decides the phase order; descriptions are hints only, so vendors'
naming (GE "ax dyn 1st pass", Siemens "t1_fl3d_tra_dynVIEWS_spair_pre") does
not need to be enumerated. Reasons never quote header text (it may hold PHI).

With :attr:`AcceptPolicy.ANY` (untagged data) rule 4 is skipped and every
acquired MR series with an acquisition time is a dynamic candidate: roles come
from timing alone, and MR/MG image series that fit no role are kept as
``OTHER`` (``mr_<n>``, ``mg_<n>``) instead of being ignored.
"""

from __future__ import annotations

import re
from collections import Counter
from dataclasses import dataclass, replace
from enum import Enum

import numpy as np

from breastflow.deid.dates import seconds_after
from breastflow.dicom.breast_evidence import Evidence, header_evidence, other_body_part, text_names_breast
from breastflow.dicom.errors import NoPreContrast
from breastflow.dicom.series import SeriesGroup, StudyGroup
from breastflow.vocabulary import Laterality
from breastflow.vocabulary import ViewPosition as MammoView


class AcceptPolicy(str, Enum):
    """Which series a run may store."""

    BREAST = "breast"  # only MR series with breast evidence get a protocol role
    ANY = "any"  # every acquired MR/MG image series, roles from timing (untagged data)


class SeriesRole(str, Enum):
    """What a series is in the breast protocol."""

    PRE = "pre"
    POST = "post"
    T2 = "t2"
    MAMMO = "mammo"
    OTHER = "other"  # stored with AcceptPolicy.ANY although it fits no protocol role
    UNKNOWN = "unknown"


_DERIVED = re.compile(r"(?<![a-z])(subtract[a-z]*|sub|mip|mpr|diff[a-z]*)(?![a-z])", re.IGNORECASE)
_LOCALIZER = re.compile(r"\bloc|scout|survey|3[ -]?pl(ane)?\b|calibration|\basset\b|\bcal\b", re.IGNORECASE)
_T2 = re.compile(r"t2|stir|tirm", re.IGNORECASE)
_PRE = re.compile(r"(\bpre\b|_pre\b|pre[-_ ]?contrast|non[-_ ]?con|\bw/?o\b|without|\bph(ase)?[-_ ]?0\b|nativ)",
                  re.IGNORECASE)
_POST = re.compile(r"(post|pass\b|\b\d+(st|nd|rd|th)\b|\bph(ase)?[-_ ]?[1-9]|\+c\b|\bgad|\bc\+)", re.IGNORECASE)
_DIFFUSION = re.compile(r"(?<![a-z])(dti|dwi|ivim|diff[a-z]*|tensor|resolve|adc|trace|b\d{2,4})(?![a-z])",
                        re.IGNORECASE)
_DYNAMIC = re.compile(r"(dyn|dce|vibrant|thrive|fl3d|views|twist|contrast|multi[-_ ]?phase)", re.IGNORECASE)
T2_MIN_ECHO_MS = 60.0
T2_MIN_REPETITION_MS = 1000.0


@dataclass(frozen=True)
class ClassifiedSeries:
    """A series with its role in the protocol.

    Attributes:
        series: the grouped series.
        role: its :class:`SeriesRole`.
        phase_index: 0 for ``PRE``, ``k >= 1`` for ``POST``, else ``None``.
        seconds_after_pre: acquisition start minus the pre's (``PRE``: 0.0;
            ``POST``: > 0; others: offset if both times are known, else ``None``).
        view, laterality: for ``MAMMO`` series.
        reason: why this role was given (always set; PHI-free).
        evidence: breast evidence codes (:class:`~breastflow.dicom.breast_evidence.Evidence`
            values, sorted) found for this series; empty when there was none.
    """

    series: SeriesGroup
    role: SeriesRole
    reason: str
    phase_index: int | None = None
    seconds_after_pre: float | None = None
    view: MammoView | None = None
    laterality: Laterality | None = None
    evidence: tuple[str, ...] = ()

    @property
    def name(self) -> str:
        """Stable, PHI-free array name: ``pre``, ``post_1``, ``t2``, ``mg_L_CC``, ``mr_<n>``, ``unknown_<n>``."""
        if self.role is SeriesRole.PRE:
            return "pre"
        if self.role is SeriesRole.POST:
            return f"post_{self.phase_index}"
        if self.role is SeriesRole.MAMMO:
            return f"mg_{self.laterality.value}_{self.view.value}"  # type: ignore[union-attr]
        if self.role is SeriesRole.T2:
            return "t2"
        number = self.series.series_number
        if self.role is SeriesRole.OTHER:
            return f"{self.series.modality.lower() or 'x'}_{'x' if number is None else number}"
        return f"unknown_{'x' if number is None else number}"


def _normal(series: SeriesGroup) -> np.ndarray | None:
    orientation = series.frames[0].orientation
    if orientation is None:
        return None
    return np.cross(np.asarray(orientation[:3]), np.asarray(orientation[3:]))


def _classify_mammo(series: SeriesGroup) -> ClassifiedSeries:
    evidence = tuple(sorted({Evidence.MAMMOGRAPHY.value}
                            | ({Evidence.BODY_PART.value} if series.first.body_part == "BREAST" else set())))
    if len(series.headers) != 1 or series.n_frames != 1:
        return ClassifiedSeries(series, SeriesRole.UNKNOWN,
                                f"mammography series holds {series.n_frames} images; expected one view per series",
                                evidence=evidence)
    header = series.first
    try:
        view = MammoView(header.view_position)
    except ValueError:
        return ClassifiedSeries(series, SeriesRole.UNKNOWN,
                                f"mammography view {header.view_position or 'missing'!r} is not CC or MLO",
                                evidence=evidence)
    try:
        side = Laterality(header.laterality)
    except ValueError:
        return ClassifiedSeries(series, SeriesRole.UNKNOWN,
                                f"image laterality {header.laterality or 'missing'!r} is not L or R", evidence=evidence)
    return ClassifiedSeries(series, SeriesRole.MAMMO, "mammography view and laterality from the header",
                            view=view, laterality=side, evidence=evidence)


def _is_diffusion(series: SeriesGroup) -> bool:
    return (any("DIFFUSION" in h.image_type or (h.diffusion_b_value or 0.0) > 0.0 for h in series.headers)
            or bool(_DIFFUSION.search(series.series_description)))


def _mr_exclusion(series: SeriesGroup) -> tuple[str, str] | None:
    """(short label, reason) why an MR series is not a DCE/T2 candidate, or ``None``."""
    header = series.first
    if "LOCALIZER" in header.image_type or _LOCALIZER.search(series.series_description):
        return "localizer", "localizer or calibration series"
    if _is_diffusion(series):
        return "diffusion", ("diffusion-weighted series (ImageType DIFFUSION, a b-value or a DTI or DWI "
                             "description); not part of the DCE or T2 protocol")
    if "DERIVED" in header.image_type or _DERIVED.search(series.series_description):
        return "derived", "derived image (subtraction, MIP or reformat); only acquired phases are ingested"
    return None


def _is_t2(series: SeriesGroup) -> bool:
    header = series.first
    if _T2.search(series.series_description):
        return True
    echo, repetition = header.echo_time_ms, header.repetition_time_ms
    return (echo is not None and repetition is not None and echo >= T2_MIN_ECHO_MS
            and repetition >= T2_MIN_REPETITION_MS)


def _has_dynamic_hint(series: SeriesGroup) -> bool:
    """A dynamic/pre/post description hint or a contrast agent (a temporal position is not enough)."""
    description = series.series_description
    return bool(_DYNAMIC.search(description) or _PRE.search(description) or _POST.search(description)
                or series.contrast_agent)


def _has_temporal_position(series: SeriesGroup) -> bool:
    return any(f.temporal_position is not None for f in series.frames[:1])


def _is_enhanced_phase(series: SeriesGroup) -> bool:
    return bool(series.contrast_agent or _POST.search(series.series_description))


def _dynamic_contrast_set(hinted: list[SeriesGroup]) -> bool:
    """>= 2 dynamic series, one with contrast agent or a post hint, one named as a dynamic sequence."""
    return (len(hinted) >= 2 and any(_is_enhanced_phase(s) for s in hinted)
            and any(_DYNAMIC.search(s.series_description) for s in hinted))


def _choose_pre(candidates: list[SeriesGroup]) -> tuple[SeriesGroup | None, str]:
    hinted = [s for s in candidates if _PRE.search(s.series_description) and not s.contrast_agent]
    if hinted:
        return max(hinted, key=lambda s: s.acquisition_start), "description hint 'pre-contrast', no contrast agent"  # type: ignore[arg-type,return-value]
    plain = [s for s in candidates if not _is_enhanced_phase(s)]
    if plain:
        return (min(plain, key=lambda s: s.acquisition_start),  # type: ignore[arg-type,return-value]
                "earliest dynamic series without contrast agent or post-contrast hint")
    return None, ""


def _same_grid(a: SeriesGroup, b: SeriesGroup) -> bool:
    if (a.first.rows, a.first.columns, a.n_frames) != (b.first.rows, b.first.columns, b.n_frames):
        return False
    na, nb = _normal(a), _normal(b)
    return na is not None and nb is not None and float(abs(np.dot(na, nb))) > 0.999


def _no_evidence_reason(series: SeriesGroup, evidence: tuple[str, ...]) -> str:
    part = other_body_part(series.first)
    if part is not None:
        found = f" despite {', '.join(evidence)}" if evidence else ""
        return (f"BodyPartExamined {part} names another body part{found}; not stored as breast "
                "(use --accept any to store untagged series)")
    return ("no breast evidence (BodyPartExamined, study, series or protocol description, receive coil, bilateral "
            "axial field of view or a dynamic series with contrast); not stored (use --accept any for untagged data)")


def _no_pre_message(n_mr: int, candidates: list[SeriesGroup], not_candidates: list[str]) -> str:
    """What was seen in an MR study without a pre-contrast series (counts, no header text)."""
    n_agent = sum(1 for s in candidates if s.contrast_agent)
    n_post = sum(1 for s in candidates if not s.contrast_agent and _POST.search(s.series_description))
    plural = "s" if len(candidates) != 1 else ""
    seen = f"{len(candidates)} dynamic candidate{plural}"
    if candidates:
        seen += f" ({n_agent} with contrast agent, {n_post} with a post-contrast hint)"
    others = Counter(not_candidates)
    if others:
        seen += "; not candidates: " + ", ".join(f"{n} {label}" for label, n in sorted(others.items()))
    return f"no pre-contrast series among {n_mr} MR series: {seen}"


def classify_study(study: StudyGroup, accept: AcceptPolicy = AcceptPolicy.BREAST) -> list[ClassifiedSeries]:
    """Classify every series of a study (order of ``study.series`` is kept).

    Args:
        study: from :func:`breastflow.dicom.series.group_studies` (series may be
            phases of a split multi-phase series: each is classified on its own).
        accept: ``BREAST`` gives MR series a protocol role only with breast
            evidence; ``ANY`` gives every acquired MR/MG series a role from timing.

    Returns:
        One :class:`ClassifiedSeries` per series; unrecognised series are
        ``UNKNOWN`` with a reason, never guessed. Breast evidence codes are in
        ``evidence``.

    Raises:
        NoPreContrast: (``BREAST``) an MR study with breast evidence in which no
            series qualifies as pre-contrast; the message counts what was seen.
    """
    everything = list(study.series)
    decided: dict[int, ClassifiedSeries] = {}
    label: dict[int, str] = {}  # short label of MR series that are not dynamic candidates
    excluded: set[int] = set()  # never stored, whatever the policy
    study_codes = [Evidence.STUDY_DESCRIPTION] if any(
        text_names_breast(s.first.study_description) for s in everything) else []
    mr: list[int] = []
    codes: dict[int, list[Evidence]] = {}
    kind: dict[int, str] = {}
    for i, series in enumerate(everything):
        if series.modality == "MG" or "Mammography" in _sop_name(series.sop_class_uid):
            decided[i] = _classify_mammo(series)
            if decided[i].role is SeriesRole.UNKNOWN and series.n_frames != 1:
                excluded.add(i)
            continue
        if series.modality != "MR":
            decided[i] = ClassifiedSeries(series, SeriesRole.UNKNOWN,
                                          f"modality {series.modality or '?'} is not part of the breast protocol")
            excluded.add(i)
            continue
        mr.append(i)
        codes[i] = header_evidence(series.first, series.series_description)
        exclusion = _mr_exclusion(series)
        if exclusion:
            label[i] = exclusion[0]
            decided[i] = ClassifiedSeries(series, SeriesRole.UNKNOWN, exclusion[1])
            excluded.add(i)
        elif _is_t2(series):
            kind[i] = "t2"
        elif _has_dynamic_hint(series):
            kind[i] = "hinted"
        elif _has_temporal_position(series):
            kind[i] = "temporal"
        else:
            kind[i] = "plain"
    hinted = [i for i in mr if kind.get(i) == "hinted"]
    if _dynamic_contrast_set([everything[i] for i in hinted]):
        study_codes.append(Evidence.DYNAMIC_CONTRAST_SET)
    evidence = {i: tuple(sorted({c.value for c in codes[i] + study_codes})) for i in mr}
    breast = {i for i in mr if evidence[i] and other_body_part(everything[i].first) is None}
    strict = accept is AcceptPolicy.BREAST
    candidates: list[SeriesGroup] = []
    for i in mr:
        if i in decided:
            continue
        series = everything[i]
        unknown = None
        if strict and i not in breast:
            label[i], unknown = "without breast evidence", _no_evidence_reason(series, evidence[i])
        elif kind[i] == "t2":
            label[i] = "T2"
            decided[i] = ClassifiedSeries(series, SeriesRole.T2, "T2 hint in description or long TE and TR")
            continue
        elif strict and kind[i] == "plain":
            label[i], unknown = "without dynamic or contrast hint", \
                "MR series without dynamic or contrast hint or contrast agent"
        elif strict and kind[i] == "temporal" and hinted:
            label[i], unknown = "with a temporal position only", (
                "MR series with a temporal position but no dynamic or contrast hint, in a study whose dynamic "
                "series are named by description or contrast agent")
        elif series.acquisition_start is None:
            label[i], unknown = "without acquisition time", \
                "dynamic series without acquisition time; cannot place it in time"
        if unknown is not None:
            decided[i] = ClassifiedSeries(series, SeriesRole.UNKNOWN, unknown)
            continue
        candidates.append(series)
    if mr and (breast or not strict):
        pre, why = _choose_pre(candidates)
        if pre is None and strict:
            raise NoPreContrast(
                _no_pre_message(len(mr), candidates, [label[i] for i in mr if i in label]),
                f"study with {len(everything)} series, first {everything[0].locator}",
            )
        index = {id(s): i for i, s in enumerate(everything)}
        if pre is not None:
            _assign_phases(pre, why, candidates, decided, index)
            reference = pre.acquisition_start
            for key, item in decided.items():
                if item.seconds_after_pre is None and item.series.acquisition_start is not None:
                    decided[key] = replace(item, seconds_after_pre=seconds_after(item.series.acquisition_start,
                                                                                 reference))
        else:
            for series in candidates:
                decided[index[id(series)]] = ClassifiedSeries(
                    series, SeriesRole.UNKNOWN, "no series qualifies as pre-contrast (all have contrast agent or "
                    "a post-contrast hint)")
    out = []
    for i, series in enumerate(everything):
        item = replace(decided[i], evidence=evidence[i]) if i in evidence else decided[i]
        if not strict and item.role is SeriesRole.UNKNOWN and i not in excluded:
            item = replace(item, role=SeriesRole.OTHER, reason=f"{item.reason}; stored as accepted (--accept any)")
        out.append(item)
    return out


def _assign_phases(pre: SeriesGroup, why: str, candidates: list[SeriesGroup],
                   decided: dict[int, ClassifiedSeries], index: dict[int, int]) -> None:
    reference = pre.acquisition_start
    decided[index[id(pre)]] = ClassifiedSeries(pre, SeriesRole.PRE, why, phase_index=0, seconds_after_pre=0.0)
    posts = []
    for series in candidates:
        if series is pre:
            continue
        key = index[id(series)]
        offset = seconds_after(series.acquisition_start, reference)
        if offset is None or offset <= 0:
            decided[key] = ClassifiedSeries(
                series, SeriesRole.UNKNOWN, "dynamic series acquired before or with the chosen pre-contrast series",
                seconds_after_pre=offset)
        elif _PRE.search(series.series_description) and not series.contrast_agent:
            decided[key] = ClassifiedSeries(
                series, SeriesRole.UNKNOWN, "pre-contrast hint on a series acquired after the chosen pre",
                seconds_after_pre=offset)
        elif not _same_grid(series, pre):
            decided[key] = ClassifiedSeries(
                series, SeriesRole.UNKNOWN, "matrix, slice count or orientation differs from the pre-contrast series",
                seconds_after_pre=offset)
        else:
            posts.append((offset, series))
    posts.sort(key=lambda item: item[0])
    for k, (offset, series) in enumerate(posts, start=1):
        decided[index[id(series)]] = ClassifiedSeries(
            series, SeriesRole.POST, "acquired after the pre-contrast series on the same grid",
            phase_index=k, seconds_after_pre=offset)


def _sop_name(sop_class_uid: str) -> str:
    from pydicom.uid import UID

    return UID(sop_class_uid).name
