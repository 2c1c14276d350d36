"""The ingest flow's ``key_secret_block`` path: the pseudonym key from a Prefect Secret block."""

from __future__ import annotations

import hashlib
import hmac
import uuid
from pathlib import Path

import pydicom
import pytest
from prefect.blocks.system import Secret

from breastflow.store.catalog import read_catalog
from breastflow.store.fs import StoreLocation
from flows.ingest import dask_task_runner, ingest_flow

pytestmark = pytest.mark.integration

BLOCK_KEY = "secret-block-key-for-flow-tests-0123456789abcdef"


def _flow():
    # threads: the Dask workers share this process's Prefect API (the session test harness)
    return ingest_flow.with_options(task_runner=dask_task_runner(workers=1, processes=False))


def _reference_pseudonym(prefix: str, kind: str, value: str, key: str) -> str:
    """The documented formula of breastflow.deid.pseudonym, written out independently."""
    return f"{prefix}-" + hmac.new(key.encode(), f"{kind}\x1f{value}".encode(), hashlib.sha256).hexdigest()[:32]


def _identifiers(dicom: Path) -> tuple[set[str], set[str]]:
    """(PatientID values, StudyInstanceUID values) read straight from the landing folder."""
    patients, studies = set(), set()
    for path in dicom.rglob("*.dcm"):
        ds = pydicom.dcmread(path, stop_before_pixels=True)
        patients.add(str(ds.PatientID))
        studies.add(str(ds.StudyInstanceUID))
    return patients, studies


def _pseudonyms(store: str) -> list[tuple[str, str, str, str]]:
    catalog = read_catalog(StoreLocation.from_url(store))
    return sorted(zip(catalog["patient"], catalog["study"], catalog["series"], catalog["source_series"], strict=True))


def test_secret_block_key_gives_the_same_pseudonyms_as_the_environment_key(tmp_path, flow_cohort, monkeypatch):
    dicom, _ = flow_cohort
    block = f"bf-key-{uuid.uuid4().hex[:8]}"
    Secret(value=BLOCK_KEY).save(block)

    monkeypatch.delenv("BREASTFLOW_PSEUDONYM_KEY")
    from_block = _flow()(str(dicom), str(tmp_path / "from_block"), key_secret_block=block)
    assert from_block["new"] == 5 and from_block["exit_status"] == 0

    monkeypatch.setenv("BREASTFLOW_PSEUDONYM_KEY", BLOCK_KEY)
    from_env = _flow()(str(dicom), str(tmp_path / "from_env"))
    assert from_env["new"] == 5

    by_block, by_env = _pseudonyms(str(tmp_path / "from_block")), _pseudonyms(str(tmp_path / "from_env"))
    assert len(by_block) == 5 and by_block == by_env
    patients, studies = _identifiers(dicom)
    assert {row[0] for row in by_block} == {_reference_pseudonym("pat", "patient", p, BLOCK_KEY) for p in patients}
    assert {row[1] for row in by_block} == {_reference_pseudonym("stu", "study", s, BLOCK_KEY) for s in studies}


def test_a_missing_secret_block_fails_the_run_with_the_block_name_and_writes_nothing(tmp_path, flow_cohort,
                                                                                     monkeypatch):
    dicom, _ = flow_cohort
    monkeypatch.delenv("BREASTFLOW_PSEUDONYM_KEY")
    missing = f"no-such-key-block-{uuid.uuid4().hex[:6]}"
    with pytest.raises(ValueError, match=missing) as info:
        _flow()(str(dicom), str(tmp_path / "store"), key_secret_block=missing)
    assert "secret" in str(info.value).lower()
    assert read_catalog(StoreLocation.from_url(str(tmp_path / "store"))).empty
