import inspect
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]


def test_deployments_point_at_the_flow_with_valid_parameters_and_no_secrets():
    text = (ROOT / "deployments" / "prefect.yaml").read_text()
    spec = yaml.safe_load(text)
    from flows.ingest import ingest_flow

    accepted = set(inspect.signature(ingest_flow.fn).parameters)
    assert spec["deployments"]
    for deployment in spec["deployments"]:
        if deployment["entrypoint"] != "flows/ingest.py:ingest_flow":
            continue
        module, name = deployment["entrypoint"].split(":")
        assert (ROOT / module).exists() and name == "ingest_flow"
        assert set(deployment["parameters"]) <= accepted
        assert deployment["schedules"][0]["cron"]
        assert deployment["work_pool"]["name"] == spec["definitions"]["work_pools"]["ingest_pool"]["name"]
    for forbidden in ("AWS_SECRET_ACCESS_KEY:", "BREASTFLOW_PSEUDONYM_KEY:", "password"):
        assert forbidden not in text


def test_train_deployment_points_at_the_flow_on_the_gpu_pool_with_valid_parameters_and_no_schedule():
    text = (ROOT / "deployments" / "prefect.yaml").read_text()
    spec = yaml.safe_load(text)
    from flows.train import TrainParameters, train_flow

    (deployment,) = [d for d in spec["deployments"] if d["name"] == "train-pix2pixhd"]
    module, name = deployment["entrypoint"].split(":")
    assert (ROOT / module).exists() and name == "train_flow" and train_flow.name == "breastflow-train"
    assert set(deployment["parameters"]) == set(inspect.signature(train_flow.fn).parameters) == {"params"}
    params = TrainParameters.model_validate(deployment["parameters"]["params"])
    run = params.train_run()
    assert (run.model, run.gpu, run.model_options["perceptual"]) == ("pix2pixhd", True, "on")
    assert run.total_epochs == 200 and run.dataset_spec["image_size"] == 512
    assert not deployment.get("schedules")
    gpu_pool = spec["definitions"]["work_pools"]["gpu_pool"]
    assert deployment["work_pool"] == gpu_pool and "gpu" in gpu_pool["name"]
    assert "job_variables" not in gpu_pool  # settings come from the worker's environment, never frozen here


def test_select_deployment_points_at_the_select_flow_with_a_valid_form():
    spec = yaml.safe_load((ROOT / "deployments" / "prefect.yaml").read_text())
    from flows.select import SelectParameters, select_flow

    (deployment,) = [d for d in spec["deployments"] if d["name"] == "select-pix2pixhd"]
    module, name = deployment["entrypoint"].split(":")
    assert (ROOT / module).exists() and name == "select_flow" and select_flow.name == "breastflow-select"
    assert set(deployment["parameters"]) == set(inspect.signature(select_flow.fn).parameters) == {"params"}
    params = SelectParameters.model_validate(deployment["parameters"]["params"])
    config = params.select_config()
    assert (config.model, config.run, config.split) == ("pix2pixhd", "default", "val")
    assert params.report_split == "test"
    assert deployment["work_pool"] == spec["definitions"]["work_pools"]["gpu_pool"] and not deployment.get("schedules")


def test_train_form_chains_into_selection():
    from flows.train import TrainParameters

    params = TrainParameters(model="template", store="/tmp/store", select_after=True, select_metrics=["ssim", "mae"])
    assert params.select_after and params.select_metrics == ["ssim", "mae"]
    assert "select_after" not in params.set_items()  # a flow switch, not a training setting


@pytest.mark.parametrize(("name", "entry"), [("utility-segmentation", "utility_flow"),
                                             ("pipeline-select-generate-utility", "pipeline_flow")])
def test_utility_deployments_point_at_their_flows_with_valid_forms(name, entry):
    spec = yaml.safe_load((ROOT / "deployments" / "prefect.yaml").read_text())
    import flows.utility as module

    (deployment,) = [d for d in spec["deployments"] if d["name"] == name]
    path, attribute = deployment["entrypoint"].split(":")
    assert (ROOT / path).exists() and attribute == entry
    flow = getattr(module, entry)
    assert set(deployment["parameters"]) == set(inspect.signature(flow.fn).parameters) == {"params"}
    form = (module.UtilityParameters if entry == "utility_flow" else module.PipelineParameters)
    params = form.model_validate(deployment["parameters"]["params"])
    assert params.scenarios == "1,2,3,4"
    assert deployment["work_pool"] == spec["definitions"]["work_pools"]["gpu_pool"] and not deployment.get("schedules")


def test_utility_form_rejects_a_scenario_out_of_range():
    from flows.utility import UtilityParameters

    with pytest.raises(ValueError, match="out of range"):
        UtilityParameters(store="/tmp/s", synthetic="syn", scenarios="2,5")


def test_utility_forms_check_the_test_splits():
    from flows.utility import PipelineParameters, UtilityParameters

    assert UtilityParameters(store="/tmp/s", synthetic="syn").test_splits == ["test"]
    assert UtilityParameters(store="/tmp/s", synthetic="syn", test_splits=["val", "test"]).test_splits == ["test", "val"]
    with pytest.raises(ValueError, match="test splits"):
        UtilityParameters(store="/tmp/s", synthetic="syn", test_splits=["holdout"])
    with pytest.raises(ValueError, match="test splits"):
        PipelineParameters(store="/tmp/s", test_splits=["train", "val", "test"])
