"""Continue a run from a checkpoint: the same model, the same data, the same (or a lengthened) LR schedule.

A worker restarted after a failure, or the same run started again, loads the
run's last checkpoint with :func:`resume_model`. The model state must be of the
same family and config and the data of the same dataset version, except that
the epoch schedule (``epochs``/``decay_epochs``) may have changed: that is how a
finished run is trained further ("a second invocation with more epochs"). Then
the schedulers keep their step count but take the new schedule, and the
optimisers' rates are set to what the new schedule gives at that step.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from breastflow.models.base import GanModel
from breastflow.train.checkpoint import (
    CheckpointMismatchError,
    check_checkpoint,
    meta_of,
)

#: config fields a continued run may change
SCHEDULE_FIELDS = frozenset({"epochs", "decay_epochs"})


def resume_model(model: GanModel, state: Mapping[str, Any], dataset_version: str, where: str) -> bool:
    """Load a checkpoint's whole state into a freshly built ``model``.

    Args:
        model: built from the run's current config, not yet wrapped (DDP).
        state: the checkpoint's ``state.pt`` dict.
        dataset_version: version of the data this run reads now.
        where: the checkpoint's location, for messages.

    Returns:
        True when the epoch schedule changed (the run was lengthened or shortened).

    Raises:
        CheckpointMismatchError: another family, another dataset version, or a config that differs
            in more than the epoch schedule (start a new run name instead).
    """
    check_checkpoint(meta_of(state, where), model.name, dataset_version)
    model_state = dict(state["model_state"])
    ours = model.config.model_dump(mode="json")
    theirs = dict(model_state.get("config", {}))
    changed = {k for k in ours.keys() | theirs.keys() if ours.get(k) != theirs.get(k)} - model.local_config_fields
    if changed - SCHEDULE_FIELDS:
        raise CheckpointMismatchError(
            f"run checkpoint {where} was trained with another {model.name} config (differs in "
            f"{', '.join(sorted(changed - SCHEDULE_FIELDS))}); only epochs and decay_epochs may change when a run "
            "continues: give the run a new name (--run) to train with these settings")
    if changed:
        fresh = {name: scheduler.state_dict() for name, scheduler in model.schedulers.items()}
        schedulers = {}
        for name, saved in model_state["schedulers"].items():
            saved = dict(saved)
            if "lr_lambdas" in saved and name in fresh:
                saved["lr_lambdas"] = fresh[name]["lr_lambdas"]
            schedulers[name] = saved
        model_state["schedulers"] = schedulers
        model_state["config"] = ours
    model.load_state_dict(model_state)
    if changed:
        _apply_schedule(model)
    return bool(changed)


def _apply_schedule(model: GanModel) -> None:
    """Set every optimiser's rates to its (new) schedule at the scheduler's current step (``LambdaLR``-style)."""
    for name, scheduler in model.schedulers.items():
        lambdas = getattr(scheduler, "lr_lambdas", None)
        if lambdas is None:
            raise CheckpointMismatchError(f"scheduler {name!r} of {model.name} is not a LambdaLR; its schedule "
                                          "cannot be changed on resume: give the run a new name")
        groups = scheduler.optimizer.param_groups
        for group, base, factor in zip(groups, scheduler.base_lrs, lambdas, strict=True):
            group["lr"] = base * factor(scheduler.last_epoch)
        scheduler._last_lr = [group["lr"] for group in groups]  # what get_last_lr() reports
