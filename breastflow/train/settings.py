"""Building a :class:`~breastflow.train.config.TrainRun` from a config file and ``key=value`` overrides (the CLI's input).

A config file (JSON, or YAML when PyYAML is installed) is a mapping with up to
three sections::

    model:   {epochs: 100, decay_epochs: 100, ngf: 64, perceptual: "on", vgg_weights: /w/vgg19.pth}
    dataset: {targets: [post_1], image_size: 512, slices: all}
    run:     {checkpoint_every: 10, batch_size: 1, seed: 0, dataset: paired_phases}

``--set`` keys: the short names of :data:`SHORT_KEYS` (``epochs``, ``decay_epochs``,
``checkpoint_every``, ``image_size``, ``batch_size``, ``perceptual=on|off`` ...)
or any field as ``model.<field>``, ``dataset.<field>``, ``run.<field>``. Values are
parsed as JSON when they parse (``3``, ``true``, ``["post_1"]``), else kept as text.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from breastflow.train.config import TrainRun

SECTIONS = ("model", "dataset", "run")
#: short ``--set`` keys -> (section, field)
SHORT_KEYS: dict[str, tuple[str, str]] = {
    "epochs": ("model", "epochs"),
    "decay_epochs": ("model", "decay_epochs"),
    "lr": ("model", "lr"),
    "perceptual": ("model", "perceptual"),
    "vgg_weights": ("model", "vgg_weights"),
    "image_size": ("dataset", "image_size"),
    "targets": ("dataset", "targets"),
    "split": ("dataset", "split"),
    "slices": ("dataset", "slices"),
    "checkpoint_every": ("run", "checkpoint_every"),
    "batch_size": ("run", "batch_size"),
    "loader_workers": ("run", "loader_workers"),
    "seed": ("run", "seed"),
    "compile": ("run", "compile"),
    "max_failures": ("run", "max_failures"),
    "samples": ("run", "samples"),
    "dataset": ("run", "dataset"),
}


class SettingsError(ValueError):
    """A config file or ``--set`` override that cannot be used; the message names it."""


def read_config_file(path: Path) -> dict[str, dict[str, Any]]:
    """The sections of a JSON/YAML config file.

    Raises:
        SettingsError: unreadable, not a mapping, or holding an unknown section.
    """
    text = Path(path).read_text()
    try:
        if Path(path).suffix.lower() in (".yaml", ".yml"):
            import yaml

            data = yaml.safe_load(text)
        else:
            data = json.loads(text)
    except Exception as err:
        raise SettingsError(f"config file {path}: cannot parse ({err})") from err
    data = data or {}
    if not isinstance(data, Mapping):
        raise SettingsError(f"config file {path}: expected a mapping with sections {', '.join(SECTIONS)}")
    unknown = sorted(set(data) - set(SECTIONS))
    if unknown:
        raise SettingsError(f"config file {path}: unknown sections {unknown} (valid: {', '.join(SECTIONS)})")
    out = {}
    for section in SECTIONS:
        value = data.get(section) or {}
        if not isinstance(value, Mapping):
            raise SettingsError(f"config file {path}: section {section!r} must be a mapping")
        out[section] = dict(value)
    return out


def _value(text: str) -> Any:
    try:
        return json.loads(text)
    except json.JSONDecodeError:
        return text


def parse_overrides(items: Iterable[str]) -> dict[str, dict[str, Any]]:
    """``["epochs=3", "model.ngf=8"]`` -> ``{"model": {"epochs": 3, "ngf": 8}, "dataset": {}, "run": {}}``.

    Raises:
        SettingsError: an item without ``=``, or an unknown key (naming the valid ones).
    """
    out: dict[str, dict[str, Any]] = {s: {} for s in SECTIONS}
    for item in items:
        key, sep, raw = item.partition("=")
        key = key.strip()
        if not sep or not key:
            raise SettingsError(f"--set {item!r}: expected key=value")
        if key in SHORT_KEYS:
            section, name = SHORT_KEYS[key]
        elif "." in key and key.split(".", 1)[0] in SECTIONS:
            section, name = key.split(".", 1)
        else:
            raise SettingsError(f"--set {key}: unknown key; use one of {', '.join(SHORT_KEYS)} or "
                                "model.<field>, dataset.<field>, run.<field>")
        out[section][name] = _value(raw.strip())
    return out


def build_train_run(model: str, store: str, config_file: Path | None = None, overrides: Iterable[str] = (),
                    **run_fields: Any) -> TrainRun:
    """One validated :class:`TrainRun` from a config file, ``--set`` items and explicit run fields (later wins).

    Raises:
        SettingsError: bad file or override.
        breastflow.registry.RegistryError: unknown model or dataset (nearest names).
        pydantic.ValidationError: a field is invalid.
    """
    sections = read_config_file(config_file) if config_file else {s: {} for s in SECTIONS}
    for section, values in parse_overrides(overrides).items():
        sections[section].update(values)
    fields = {**sections["run"], **{k: v for k, v in run_fields.items() if v is not None}}
    reserved = sorted({"model", "model_options", "dataset_spec", "store"} & set(sections["run"]))
    if reserved:
        raise SettingsError(f"run settings {reserved} come from the command line and the model/dataset sections")
    return TrainRun(model=model, store=store, model_options=sections["model"], dataset_spec=sections["dataset"],
                    **fields)
