"""The base of every family's typed configuration (STYLE habit 3).

A family config is a frozen pydantic model with ``extra="forbid"``: it is
validated once, by :func:`breastflow.models.registry.build_model`, and
``config.model_dump_json()`` is what a run saves beside its checkpoints.
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field


class ModelConfig(BaseModel):
    """Fields every family shares: the optimiser and the epoch schedule.

    Attributes:
        epochs: epochs at the constant learning rate ``lr``.
        decay_epochs: epochs after those over which the learning rate decays
            linearly to 0 (pix2pixHD ``niter`` / ``niter_decay``); 0 for none.
        lr: Adam learning rate.
        beta1: Adam ``beta1``.
        beta2: Adam ``beta2``.
    """

    model_config = ConfigDict(extra="forbid", frozen=True, use_enum_values=False)

    epochs: int = Field(100, ge=0)
    decay_epochs: int = Field(100, ge=0)
    lr: float = Field(2e-4, gt=0)
    beta1: float = Field(0.5, ge=0, lt=1)
    beta2: float = Field(0.999, ge=0, lt=1)

    @property
    def total_epochs(self) -> int:
        """Epochs of a complete run: ``epochs + decay_epochs``."""
        return self.epochs + self.decay_epochs
