"""The registry of GAN families and the one way to build a model from a name and a config (STYLE habit 2).

Families register next to their class::

    @MODELS.register("pix2pixhd")
    class Pix2PixHD(GanModel): ...

and are imported by ``breastflow/models/__init__.py`` (an explicit list, no
module-name guessing). Unknown names fail with the nearest valid names.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from pydantic import BaseModel

from breastflow.models.base import GanModel, ModelStateError
from breastflow.models.config import ModelConfig
from breastflow.registry import Registry

MODELS: Registry[type[GanModel]] = Registry("GAN model")


def validate_config(name: str, config: Mapping[str, Any] | ModelConfig | None = None) -> ModelConfig:
    """Validate ``config`` once through the family's pydantic config class.

    Args:
        name: registered family name, e.g. ``"pix2pixhd"``.
        config: a mapping of config fields (missing ones take the defaults), an
            instance of the family's config class, or None for all defaults.

    Raises:
        breastflow.registry.RegistryError: unknown ``name`` (with the nearest names).
        pydantic.ValidationError: a field is unknown, of the wrong type or out of range.
        TypeError: ``config`` is a config object of another family.
    """
    family = MODELS.get(name)
    if config is None:
        return family.config_class()
    if isinstance(config, BaseModel):
        if not isinstance(config, family.config_class):
            raise TypeError(f"model {name!r} needs a {family.config_class.__name__}, got {type(config).__name__}")
        return config
    return family.config_class.model_validate(dict(config))


def build_model(name: str, config: Mapping[str, Any] | ModelConfig | None = None) -> GanModel:
    """Build the family ``name`` from a validated config (see :func:`validate_config`).

    Raises:
        breastflow.registry.RegistryError: unknown ``name``.
        pydantic.ValidationError: invalid config.
        FileNotFoundError: a weight file the config asks for is missing (family specific).
    """
    validated = validate_config(name, config)
    return MODELS.get(name)(validated)


def load_model(state: Mapping[str, Any], config_overrides: Mapping[str, Any] | None = None) -> GanModel:
    """Rebuild a model from a :meth:`GanModel.state_dict` (family and config taken from the state).

    Args:
        state: a whole-state dict as saved in a checkpoint.
        config_overrides: fields replaced before building, only machine-local
            ones (e.g. ``{"vgg_weights": "/here/vgg19.pth"}``).

    Raises:
        ModelStateError: the state names no model, or an override is not machine-local.
    """
    if "model" not in state or "config" not in state:
        raise ModelStateError("not a breastflow model state: keys 'model' and 'config' are missing")
    name = str(state["model"])
    family = MODELS.get(name)
    overrides = dict(config_overrides or {})
    bad = sorted(set(overrides) - family.local_config_fields)
    if bad:
        raise ModelStateError(
            f"only machine-local fields {sorted(family.local_config_fields)} of {name} may be overridden, not {bad}"
        )
    model = build_model(name, {**state["config"], **overrides})
    model.load_state_dict(state)
    return model


def model_name(value: str) -> str:
    """The registered name of model family ``value`` (e.g. for a form's validator).

    Raises:
        ValueError: unknown family, with the nearest registered names (a ``ValueError``,
            not the registry's ``KeyError``, so pydantic reports it as a validation error).
    """
    from breastflow.registry import RegistryError

    try:
        return MODELS.get(value).name
    except RegistryError as err:
        raise ValueError(str(err)) from err
