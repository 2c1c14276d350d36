"""The search space of a training sweep (``breastflow sweep --space FILE``), read from YAML or JSON.

A space file is a mapping from training setting to a distribution::

    lr:         {loguniform: [1.0e-4, 1.0e-3]}
    lambda_l1:  {choice: [0.0, 10.0, 100.0]}
    n_layers_d: {choice: [2, 3]}            # discriminator depth (its field of view)
    batch_size: {grid: [1, 2]}              # every value, in order, for each sample
    model.ngf:  32                          # a plain value: fixed for every trial

Keys are those of ``breastflow train --set`` (:data:`breastflow.train.settings.SHORT_KEYS`,
``model.<field>``, ``dataset.<field>``, ``run.<field>``) and, as a shorthand, any field
of the model family's config (``lambda_l1`` means ``model.lambda_l1``). Distributions:
``choice`` (one value drawn per trial), ``grid`` (every value: Tune's grid search),
``uniform`` and ``loguniform`` (``[low, high]``), ``randint`` (``[low, high)``, integers).
The epoch budget (``epochs``, ``decay_epochs``) is ASHA's ``max_t`` and is set in the
base config, not in the space; so is the run name.
"""

from __future__ import annotations

import difflib
import json
import math
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict

from breastflow.train.config import TrainRun
from breastflow.train.settings import SECTIONS, SHORT_KEYS

#: distribution name -> what its value must be (for the error messages)
DISTRIBUTIONS = {
    "choice": "a non-empty list of values",
    "grid": "a non-empty list of values",
    "uniform": "[low, high] with low < high",
    "loguniform": "[low, high] with 0 < low < high",
    "randint": "[low, high] integers with low < high (high excluded)",
}
#: settings a space may not vary (the sweep owns them)
RESERVED = {("model", "epochs"): "the epoch budget is ASHA's max_t: set epochs in the base config",
            ("model", "decay_epochs"): "the epoch budget is ASHA's max_t: set decay_epochs in the base config",
            ("run", "run"): "trial runs are named <sweep>-t<k> by the sweep",
            ("run", "validate_every"): "the sweep validates after every epoch (ASHA's rungs need the metric)",
            ("run", "store"): "the store comes from the command line",
            ("run", "model"): "the model comes from the command line",
            ("dataset", "split"): "trials train on the train split and validate on val"}


class SweepSpaceError(ValueError):
    """A space file that cannot be used; the message names the file and the key."""


class Param(BaseModel):
    """One setting of the space.

    Attributes:
        key: as written in the file.
        section, field: where it goes in the training settings (``model``/``dataset``/``run``).
        kind: a :data:`DISTRIBUTIONS` name, or ``fixed``.
        values: the list (``choice``/``grid``), the bounds (``uniform``/``loguniform``/``randint``)
            or ``[value]`` (``fixed``).
    """

    model_config = ConfigDict(frozen=True)

    key: str
    section: str
    field: str
    kind: str
    values: list[Any]

    def candidates(self) -> list[Any]:
        """Values to check against the config (every listed value, or both bounds)."""
        if self.kind == "randint":
            return [self.values[0], self.values[1] - 1]
        return list(self.values)

    def to_tune(self) -> Any:
        """The Ray Tune search-space object (or the plain value of a fixed setting)."""
        from ray import tune

        if self.kind == "fixed":
            return self.values[0]
        if self.kind == "grid":
            return tune.grid_search(list(self.values))
        if self.kind == "choice":
            return tune.choice(list(self.values))
        return getattr(tune, self.kind)(*self.values)


class SweepSpace(BaseModel):
    """A validated search space: its settings in file order and where it came from."""

    model_config = ConfigDict(frozen=True)

    source: str
    params: list[Param]

    def to_tune(self) -> dict[str, Any]:
        """``{key: tune distribution}`` for the Tuner's ``param_space``."""
        return {p.key: p.to_tune() for p in self.params}

    def describe(self) -> dict[str, Any]:
        """``{key: {kind: values}}`` (JSON data, recorded with the sweep)."""
        return {p.key: (p.values[0] if p.kind == "fixed" else {p.kind: p.values}) for p in self.params}

    def overrides(self, values: Mapping[str, Any]) -> dict[str, dict[str, Any]]:
        """One trial's sampled ``{key: value}`` as ``{section: {field: value}}``."""
        out: dict[str, dict[str, Any]] = {s: {} for s in SECTIONS}
        for p in self.params:
            if p.key in values:
                out[p.section][p.field] = values[p.key]
        return out


def _fields(model: str, dataset: str) -> dict[str, set[str]]:
    from breastflow.data.datasets import DATASETS
    from breastflow.models import MODELS

    return {"model": set(MODELS.get(model).config_class.model_fields),
            "dataset": set(DATASETS.get(dataset).spec_type.model_fields),
            "run": set(TrainRun.model_fields) - {"model_options", "dataset_spec"}}


def resolve_key(key: str, model: str, dataset: str = "paired_phases", where: str = "space") -> tuple[str, str]:
    """``(section, field)`` of a space key.

    Raises:
        SweepSpaceError: unknown key (with the nearest valid names) or a setting the sweep owns.
    """
    fields = _fields(model, dataset)
    if key in SHORT_KEYS:
        section, name = SHORT_KEYS[key]
    elif "." in key and key.split(".", 1)[0] in SECTIONS:
        section, name = key.split(".", 1)
        if name not in fields[section]:
            near = difflib.get_close_matches(name, sorted(fields[section]), n=3, cutoff=0.5)
            raise SweepSpaceError(f"{where}: key {key!r}: {section} has no field {name!r}"
                                  + (f"; nearest: {', '.join(f'{section}.{n}' for n in near)}" if near else ""))
    elif key in fields["model"]:
        section, name = "model", key
    else:
        valid = sorted({*SHORT_KEYS, *fields["model"]})
        near = difflib.get_close_matches(key, valid, n=3, cutoff=0.5)
        raise SweepSpaceError(f"{where}: unknown key {key!r}"
                              + (f"; nearest: {', '.join(near)}" if near else "")
                              + f" (keys: the --set short keys, {model} config fields, model.<field>, "
                              "dataset.<field>, run.<field>)")
    if (section, name) in RESERVED:
        raise SweepSpaceError(f"{where}: key {key!r} cannot be swept: {RESERVED[(section, name)]}")
    return section, name


def _number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)


def parse_distribution(key: str, spec: Any, where: str) -> tuple[str, list[Any]]:
    """``(kind, values)`` of one entry of the file.

    Raises:
        SweepSpaceError: an unknown distribution name or values of the wrong form (naming the key).
    """
    if not isinstance(spec, Mapping):
        if isinstance(spec, list):
            raise SweepSpaceError(f"{where}: key {key!r}: a bare list is ambiguous; write {{choice: [...]}} or "
                                  "{grid: [...]}")
        return "fixed", [spec]
    if len(spec) != 1:
        raise SweepSpaceError(f"{where}: key {key!r}: expected one distribution ({', '.join(DISTRIBUTIONS)}), "
                              f"got {sorted(spec) or 'an empty mapping'}")
    kind, values = next(iter(spec.items()))
    if kind not in DISTRIBUTIONS:
        near = difflib.get_close_matches(str(kind), list(DISTRIBUTIONS), n=1, cutoff=0.5)
        raise SweepSpaceError(f"{where}: key {key!r}: unknown distribution {kind!r}"
                              + (f" (did you mean {near[0]}?)" if near else "")
                              + f"; use one of {', '.join(DISTRIBUTIONS)}")
    bad = f"{where}: key {key!r}: {kind} needs {DISTRIBUTIONS[kind]}, got {values!r}"
    if not isinstance(values, list) or not values:
        raise SweepSpaceError(bad)
    if kind in ("choice", "grid"):
        return kind, list(values)
    if len(values) != 2 or not all(_number(v) for v in values) or not values[0] < values[1]:
        raise SweepSpaceError(bad)
    if kind == "loguniform" and values[0] <= 0:
        raise SweepSpaceError(bad)
    if kind == "randint" and not all(isinstance(v, int) for v in values):
        raise SweepSpaceError(bad)
    return kind, list(values)


def read_space_data(path: Path) -> dict[str, Any]:
    """The mapping of a space file (YAML by suffix ``.yaml``/``.yml``, else JSON).

    Raises:
        SweepSpaceError: missing, unparsable, not a mapping, or empty.
    """
    path = Path(path)
    try:
        text = path.read_text()
    except OSError as err:
        raise SweepSpaceError(f"space file {path}: cannot read ({err.strerror or err})") from err
    try:
        if path.suffix.lower() in (".yaml", ".yml"):
            import yaml

            data = yaml.safe_load(text)
        else:
            data = json.loads(text)
    except Exception as err:
        raise SweepSpaceError(f"space file {path}: cannot parse ({err})") from err
    if data is None or (isinstance(data, Mapping) and not data):
        raise SweepSpaceError(f"space file {path}: the space is empty; give at least one setting, e.g. "
                              "lr: {loguniform: [1.0e-4, 1.0e-3]}")
    if not isinstance(data, Mapping):
        raise SweepSpaceError(f"space file {path}: expected a mapping of setting -> distribution, "
                              f"got {type(data).__name__}")
    return dict(data)


def build_space(data: Mapping[str, Any], model: str, dataset: str = "paired_phases",
                source: str = "space") -> SweepSpace:
    """A :class:`SweepSpace` from the file's mapping.

    Args:
        data: ``{key: distribution}``.
        model: the model family (its config fields are valid keys).
        dataset: the dataset family (its spec fields are valid ``dataset.<field>`` keys).
        source: the file, named in errors.

    Raises:
        SweepSpaceError: empty space, unknown key, reserved key, bad distribution, two keys for one setting,
            or a space of fixed values only.
    """
    if not data:
        raise SweepSpaceError(f"space file {source}: the space is empty")
    params: list[Param] = []
    seen: dict[tuple[str, str], str] = {}
    for key, spec in data.items():
        key = str(key)
        section, name = resolve_key(key, model, dataset, where=f"space file {source}")
        if (section, name) in seen:
            raise SweepSpaceError(f"space file {source}: keys {seen[(section, name)]!r} and {key!r} both set "
                                  f"{section}.{name}")
        seen[(section, name)] = key
        kind, values = parse_distribution(key, spec, where=f"space file {source}")
        params.append(Param(key=key, section=section, field=name, kind=kind, values=values))
    if all(p.kind == "fixed" for p in params):
        raise SweepSpaceError(f"space file {source}: every setting is fixed; give at least one distribution "
                              f"({', '.join(DISTRIBUTIONS)})")
    return SweepSpace(source=source, params=params)


def read_space(path: Path, model: str, dataset: str = "paired_phases") -> SweepSpace:
    """Read and validate a space file (see the module docstring).

    Raises:
        SweepSpaceError: see :func:`read_space_data` and :func:`build_space`.
    """
    return build_space(read_space_data(path), model, dataset, source=str(path))
