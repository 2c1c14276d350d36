"""Prefect tasks of the training flow: each is one call into ``breastflow.train`` / ``breastflow.generate``.

Training runs Ray Train inside this plain task (``docs/train.md``): Ray is the
one on ``RAY_ADDRESS`` or a local instance started (and stopped) by the task.
A retry resumes the run from its last checkpoint, so the task is retried once
when the workers failed more often than ``max_failures`` or the store blinked;
bad settings, missing weights or data and an unreachable cluster fail at once.
Results are not persisted (runs hold store URLs, no secrets, but nothing needs them).
"""

from __future__ import annotations

from prefect import get_run_logger, task
from prefect.artifacts import create_image_artifact, create_markdown_artifact
from prefect.cache_policies import NO_CACHE

from breastflow.generate.config import GenerateConfig, GenerateResult
from breastflow.generate.run import generate_synthetic
from breastflow.train.config import TrainRun
from breastflow.train.follow import FollowedRun, train_and_follow
from breastflow.train.report import (
    generate_markdown,
    is_url,
    samples_markdown,
    training_markdown,
)
from tasks.retry import retry_on

TRAIN_RETRY_DELAYS = [30]
GENERATE_RETRY_DELAYS = [2, 5, 15]
#: Ray Train's error after ``max_failures`` worker-group restarts (matched by name: Ray is imported lazily)
RAY_TRAINING_FAILED = "TrainingFailedError"
SUMMARY_KEY = "breastflow-train-summary"
SAMPLES_KEY = "breastflow-train-samples"
GENERATE_KEY = "breastflow-generate-summary"


#: Retry (resuming from the last checkpoint) after Ray Train gave up or the store blinked, never bad input.
retry_training = retry_on((RAY_TRAINING_FAILED,))


#: Retry only storage/network errors.
retry_storage = retry_on(())


@task(retries=1, retry_delay_seconds=TRAIN_RETRY_DELAYS, retry_condition_fn=retry_training,
      cache_policy=NO_CACHE, persist_result=False, task_run_name="train-{run.model}-{run.run}")
def train_task(run: TrainRun, follow_interval_s: float = 10.0) -> FollowedRun:
    """Train ``run`` on Ray Train, logging the dashboard address and each epoch's losses as they land."""
    return train_and_follow(run, notify=get_run_logger().info, interval_s=follow_interval_s)


@task(cache_policy=NO_CACHE, persist_result=False)
def publish_training_task(followed: FollowedRun) -> None:
    """Publish the run summary (losses, checkpoints, dashboard link) and the last sample grid as artifacts."""
    create_markdown_artifact(markdown=training_markdown(followed), key=SUMMARY_KEY,
                             description=f"breastflow training run {followed.result.run}: losses, checkpoints")
    if is_url(followed.samples):
        create_image_artifact(image_url=followed.samples, key=SAMPLES_KEY,
                              description=f"last sample grid of {followed.result.run}")
    else:  # a store path cannot be shown as an image: list it
        create_markdown_artifact(markdown=samples_markdown(followed), key=SAMPLES_KEY,
                                 description=f"last sample grid of {followed.result.run} (store path)")


@task(retries=2, retry_delay_seconds=GENERATE_RETRY_DELAYS, retry_condition_fn=retry_storage,
      cache_policy=NO_CACHE, persist_result=False, task_run_name="generate-{config.split.value}")
def generate_task(config: GenerateConfig) -> GenerateResult:
    """Write the synthetic set of one split from a checkpoint (``breastflow generate``)."""
    return generate_synthetic(config)


@task(cache_policy=NO_CACHE, persist_result=False)
def publish_generate_task(result: GenerateResult, store: str) -> None:
    """Publish what the generation wrote and the selection string that reads it."""
    create_markdown_artifact(markdown=generate_markdown(result, store), key=GENERATE_KEY,
                             description=f"breastflow synthetic set {result.name}")
