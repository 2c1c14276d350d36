"""Learning-rate schedule shared by the families: constant, then linear decay to 0.

pix2pixHD (``train.py`` / ``Pix2PixHDModel.update_learning_rate``) keeps ``lr``
for ``niter`` epochs and, after each later epoch, subtracts ``lr / niter_decay``.
In 0-based epoch indices ``e`` that is the factor

    f(e) = 1                              for e <= N
    f(e) = max(0, 1 - (e - N) / M)        for e > N

with ``N = epochs`` and ``M = decay_epochs``: the last epoch (``e = N + M - 1``)
trains at ``lr / M`` and the rate is 0 once all ``N + M`` epochs are done.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING

import torch
from torch import nn
from torch.optim import Optimizer
from torch.optim.lr_scheduler import LambdaLR

if TYPE_CHECKING:
    from breastflow.models.config import ModelConfig


class LinearDecay:
    """Picklable LR factor ``f(e)`` above (a plain function would not survive ``state_dict``).

    Args:
        epochs: ``N``, epochs at the full rate.
        decay_epochs: ``M``, epochs of linear decay; 0 keeps the rate constant for ever.
    """

    def __init__(self, epochs: int, decay_epochs: int) -> None:
        if epochs < 0 or decay_epochs < 0:
            raise ValueError(f"epochs ({epochs}) and decay_epochs ({decay_epochs}) must be >= 0")
        self.epochs = epochs
        self.decay_epochs = decay_epochs

    def __call__(self, epoch: int) -> float:
        if epoch <= self.epochs or self.decay_epochs == 0:
            return 1.0
        return max(0.0, 1.0 - (epoch - self.epochs) / self.decay_epochs)


def constant_then_linear_decay(optimizer: Optimizer, epochs: int, decay_epochs: int) -> LambdaLR:
    """A ``LambdaLR`` stepping once per epoch with :class:`LinearDecay`.

    Args:
        optimizer: the optimiser whose groups' rates are scaled.
        epochs: epochs at the full rate.
        decay_epochs: epochs of linear decay to 0.
    """
    return LambdaLR(optimizer, lr_lambda=LinearDecay(epochs, decay_epochs))


def adam_with_decay(networks: Mapping[str, nn.Module], config: ModelConfig
                    ) -> tuple[dict[str, Optimizer], dict[str, LambdaLR]]:
    """One Adam per network (``lr``, ``(beta1, beta2)`` of ``config``) and its constant-then-linear schedule.

    The optimiser of paper 003 / pix2pixHD: Adam(2e-4, (0.5, 0.999)), ``epochs``
    at the full rate then ``decay_epochs`` of linear decay to 0.

    Returns:
        (optimisers, schedulers), both keyed like ``networks``.
    """
    betas = (config.beta1, config.beta2)
    optimizers: dict[str, Optimizer] = {
        name: torch.optim.Adam(net.parameters(), lr=config.lr, betas=betas) for name, net in networks.items()}
    schedulers = {name: constant_then_linear_decay(opt, config.epochs, config.decay_epochs)
                  for name, opt in optimizers.items()}
    return optimizers, schedulers
