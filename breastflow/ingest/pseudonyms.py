"""The keyed pseudonyms an ingest run needs, in one object that holds the key.

Patient, study and series pseudonyms come from :mod:`breastflow.deid.pseudonym`
(HMAC-SHA256). Two more keyed digests are ingest-specific: a *fingerprint* of
a series' SOP Instance UIDs (to recognise an already ingested series) and a
*path reference* (to name a rejected file in the store's report without its
path, which may contain a patient's name). The key stays in the planning
process: workers receive pseudonyms and PHI-free attributes only.
"""

from __future__ import annotations

import hashlib
import hmac
import os
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

from breastflow.deid.pseudonym import PseudonymKind, check_key, load_key, pseudonymise


@dataclass(frozen=True)
class Pseudonymiser:
    """Keyed pseudonyms for one run.

    Attributes:
        key: secret key (>= 32 bytes); never logged or sent to workers.
    """

    key: bytes = field(repr=False)

    def __post_init__(self) -> None:
        check_key(self.key)

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> Pseudonymiser:
        """Load the key from ``BREASTFLOW_PSEUDONYM_KEY``.

        Raises:
            PseudonymKeyError: the variable is unset or too short.
        """
        return cls(load_key(os.environ if env is None else env))

    def patient(self, patient_id: str) -> str:
        return pseudonymise(patient_id, PseudonymKind.PATIENT, self.key)

    def study(self, study_uid: str) -> str:
        return pseudonymise(study_uid, PseudonymKind.STUDY, self.key)

    def series(self, series_uid: str) -> str:
        return pseudonymise(series_uid, PseudonymKind.SERIES, self.key)

    def _digest(self, domain: str, text: str) -> str:
        return hmac.new(self.key, f"{domain}\x1f{text}".encode(), hashlib.sha256).hexdigest()[:32]

    def fingerprint(self, instance_uids: Iterable[str]) -> str:
        """Keyed digest of a series' SOP Instance UIDs (order-independent)."""
        return "fp-" + self._digest("fingerprint", "\n".join(sorted(instance_uids)))

    def path_ref(self, where: str) -> str:
        """Keyed reference of a source path or locator (PHI-free name for reports)."""
        return "ref-" + self._digest("path", where) if where else ""
