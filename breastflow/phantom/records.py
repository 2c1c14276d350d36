"""What a phantom study writer returns: rows for the cohort's ground-truth tables.

Both the MRI and the mammography writers return a :class:`StudyResult`; the
cohort writer collects them into ``cohort.csv`` (one row per study),
``lesions.csv`` (one row per lesion, Duke annotation-table style) and
``phi.json`` (every PHI value written, for de-identification tests).
Paths in rows are relative to the cohort's output folder (POSIX style).
"""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class StudyResult:
    """Ground truth of one written study.

    Attributes:
        study: cohort-table row (column -> scalar). Must include ``study_id``
            (phantom-local, PHI-free, e.g. ``"PH0007"``), ``modality``, ``vendor``,
            ``manufacturer``, ``field_strength`` (MRI; ``None`` for mammo),
            ``study_instance_uid`` and ``dicom_dir``.
        lesions: one row per lesion (may be empty).
        phi_values: every identifying string written into this study's headers.
        n_files: number of DICOM files written.
        phi: optional detail of ``phi_values``: DICOM keyword -> value (or list of
            values) of every PHI attribute written, stored in ``phi.json``.
    """

    study: dict[str, object]
    lesions: list[dict[str, object]] = field(default_factory=list)
    phi_values: list[str] = field(default_factory=list)
    n_files: int = 0
    phi: dict[str, object] = field(default_factory=dict)
