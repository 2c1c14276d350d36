import inspect
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[2]


def test_deployments_point_at_the_flow_with_valid_parameters_and_no_secrets():
    text = (ROOT / "deployments" / "prefect.yaml").read_text()
    spec = yaml.safe_load(text)
    from flows.ingest import ingest_flow

    accepted = set(inspect.signature(ingest_flow.fn).parameters)
    assert spec["deployments"]
    for deployment in spec["deployments"]:
        module, name = deployment["entrypoint"].split(":")
        assert (ROOT / module).exists() and name == "ingest_flow"
        assert set(deployment["parameters"]) <= accepted
        assert deployment["schedules"][0]["cron"]
        assert deployment["work_pool"]["name"] == spec["definitions"]["work_pools"]["ingest_pool"]["name"]
    for forbidden in ("AWS_SECRET_ACCESS_KEY:", "BREASTFLOW_PSEUDONYM_KEY:", "password"):
        assert forbidden not in text
