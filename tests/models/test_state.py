"""Whole-state ``state_dict``/``load_state_dict``: resume gives identical outputs, optimiser and schedule."""

from __future__ import annotations

import io
from pathlib import Path

import pytest
import torch
from model_helpers import TINY, TINY_OFF
from torch import nn

from breastflow.data import keys
from breastflow.models import ModelStateError, build_model, load_model

pytestmark = pytest.mark.filterwarnings("ignore:Detected call of:UserWarning")

X = torch.linspace(-1, 1, 2 * 16 * 16).view(2, 1, 16, 16)
BATCH = {keys.IMAGE: X, keys.TARGET: X.flip(-1)}


def _trained(options: dict, steps: int = 2, epochs: int = 1, seed: int = 0):
    torch.manual_seed(seed)
    model = build_model("pix2pixhd", options)
    for _ in range(epochs):
        for _ in range(steps):
            model.train_step(BATCH)
        model.end_epoch()
    return model


def _assert_same_tree(a, b) -> None:
    if isinstance(a, dict):
        assert a.keys() == b.keys()
        for k in a:
            _assert_same_tree(a[k], b[k])
    elif isinstance(a, (list, tuple)):
        assert len(a) == len(b)
        for x, y in zip(a, b, strict=True):
            _assert_same_tree(x, y)
    elif isinstance(a, torch.Tensor):
        assert torch.equal(a, b)
    else:
        assert a == b


def test_round_trip_gives_identical_generation_optimiser_and_schedule() -> None:
    source = _trained(TINY_OFF, steps=2, epochs=3)  # epochs=2: the decay has begun
    target = _trained(TINY_OFF, steps=0, epochs=0, seed=1)  # fresh, other init
    assert not torch.equal(source.generate(X), target.generate(X))
    buffer = io.BytesIO()
    torch.save(source.state_dict(), buffer)  # through a file, as a checkpoint; loadable with weights_only
    buffer.seek(0)
    target.load_state_dict(torch.load(buffer, weights_only=True))
    assert torch.equal(target.generate(X), source.generate(X))
    for name in ("generator", "discriminator"):
        _assert_same_tree(target.optimizers[name].state_dict(), source.optimizers[name].state_dict())
        assert target.schedulers[name].state_dict() == source.schedulers[name].state_dict()
        assert target.optimizers[name].param_groups[0]["lr"] == pytest.approx(1e-4)  # 2 + 2 epochs, 3 done
    assert (target.step, target.epoch) == (6, 3)
    # training on continues identically
    assert target.train_step(BATCH) == source.train_step(BATCH)
    target.end_epoch()
    source.end_epoch()
    assert torch.equal(target.generate(X), source.generate(X))
    assert target.optimizers["generator"].param_groups[0]["lr"] == source.optimizers["generator"].param_groups[0]["lr"] == 0.0


def test_state_holds_everything() -> None:
    state = _trained(TINY_OFF).state_dict()
    assert state["model"] == "pix2pixhd"
    assert state["config"]["perceptual"] == "off" and state["config"]["ngf"] == 8
    assert set(state["networks"]) == set(state["optimizers"]) == set(state["schedulers"]) == {"generator", "discriminator"}
    assert (state["step"], state["epoch"]) == (2, 1)


def test_load_model_rebuilds_from_the_state() -> None:
    source = _trained(TINY_OFF)
    copy = load_model(source.state_dict())
    assert copy.config == source.config
    assert torch.equal(copy.generate(X), source.generate(X))


def test_vgg_path_may_differ_on_another_machine(vgg_file: Path, tmp_path: Path) -> None:
    source = _trained({**TINY, "vgg_weights": str(vgg_file)}, steps=1)
    other = tmp_path / "here.pth"
    other.write_bytes(vgg_file.read_bytes())
    copy = load_model(source.state_dict(), config_overrides={"vgg_weights": str(other)})
    assert torch.equal(copy.generate(X), source.generate(X))
    with pytest.raises(ModelStateError, match=r"only machine-local fields \['vgg_weights'\].*\['ngf'\]"):
        load_model(source.state_dict(), config_overrides={"ngf": 4})


MISMATCHES = [
    (lambda s: {**s, "model": "template"}, "state of model 'template' cannot load into model 'pix2pixhd'"),
    (lambda s: {**s, "config": {**s["config"], "ngf": 4}}, r"another pix2pixhd config \(differs in ngf\)"),
    (lambda s: {**s, "format": 99}, "format 99"),
    (lambda s: {**s, "networks": {"generator": s["networks"]["generator"]}}, r"networks \['generator'\]"),
]


@pytest.mark.parametrize(("corrupt", "message"), MISMATCHES)
def test_foreign_state_is_refused(corrupt, message: str) -> None:
    state = _trained(TINY_OFF, steps=1).state_dict()
    with pytest.raises(ModelStateError, match=message):
        build_model("pix2pixhd", TINY_OFF).load_state_dict(corrupt(state))


class _Wrapper(nn.Module):
    """Stands in for DistributedDataParallel: holds the network as ``.module``."""

    def __init__(self, module: nn.Module) -> None:
        super().__init__()
        self.module = module

    def forward(self, x: torch.Tensor):
        return self.module(x)


def test_wrapped_networks_train_and_save_unwrapped_keys() -> None:
    model = build_model("pix2pixhd", TINY_OFF)
    plain_keys = set(model.state_dict()["networks"]["generator"])
    model.wrap_networks(lambda name, net: _Wrapper(net))
    assert isinstance(model.generator, _Wrapper)
    model.train_step(BATCH)
    assert set(model.state_dict()["networks"]["generator"]) == plain_keys
    copy = load_model(model.state_dict())
    assert torch.equal(copy.generate(X), model.generate(X))
    with pytest.raises(ValueError, match="changed its parameters"):
        model.wrap_networks(lambda name, net: nn.Linear(1, 1))


def test_to_moves_networks_and_optimiser_state() -> None:
    model = _trained(TINY_OFF, steps=1)
    model.to("cpu")
    assert model.device == torch.device("cpu")
    model.to("meta")
    assert all(p.device.type == "meta" for net in model.networks.values() for p in net.parameters())
    states = [s for opt in model.optimizers.values() for s in opt.state.values()]
    assert states and all(s["exp_avg"].device.type == "meta" for s in states)
