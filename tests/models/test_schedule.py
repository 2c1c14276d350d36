"""The LR schedule: constant for ``epochs``, then linear decay to 0 over ``decay_epochs``, as pix2pixHD."""

from __future__ import annotations

import pytest
from model_helpers import TINY_OFF

from breastflow.models import build_model
from breastflow.models.schedule import LinearDecay

pytestmark = pytest.mark.filterwarnings("ignore:Detected call of:UserWarning")  # end_epoch without a step


def pix2pixhd_reference(lr: float, niter: int, niter_decay: int, epochs: int) -> list[float]:
    """LR in use during each 1-based epoch of NVIDIA pix2pixHD ``train.py``: after epoch e > niter,
    ``update_learning_rate`` subtracts ``lr / niter_decay``."""
    rates, current = [], lr
    for epoch in range(1, epochs + 1):
        rates.append(current)
        if epoch > niter:
            current -= lr / niter_decay
    return rates


@pytest.mark.parametrize(("epochs", "decay"), [(3, 4), (2, 1), (100, 100), (0, 5)])
def test_model_lr_per_epoch_matches_pix2pixhd(epochs: int, decay: int) -> None:
    model = build_model("pix2pixhd", {**TINY_OFF, "epochs": epochs, "decay_epochs": decay})
    seen = []
    for _ in range(epochs + decay):
        seen.append([opt.param_groups[0]["lr"] for opt in model.optimizers.values()])
        model.end_epoch()
    reference = pix2pixhd_reference(2e-4, epochs, decay, epochs + decay)
    assert [g for g, _ in seen] == pytest.approx(reference, abs=1e-12)
    assert [d for _, d in seen] == pytest.approx(reference, abs=1e-12)
    assert model.optimizers["generator"].param_groups[0]["lr"] == pytest.approx(0.0, abs=1e-12)  # after the run
    assert model.epoch == epochs + decay


def test_boundaries_of_the_default_schedule() -> None:
    f = LinearDecay(100, 100)
    assert [f(e) for e in (0, 99, 100, 101, 150, 199, 200, 250)] == pytest.approx(
        [1.0, 1.0, 1.0, 0.99, 0.5, 0.01, 0.0, 0.0]
    )


def test_no_decay_keeps_the_rate() -> None:
    assert LinearDecay(3, 0)(10) == 1.0
    with pytest.raises(ValueError, match="must be >= 0"):
        LinearDecay(-1, 2)
