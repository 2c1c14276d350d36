"""The validation metric reported during training (``TrainRun.validate_every``): generator vs real target on ``val``.

For paired image-to-image families (the ``paired_phases`` dataset: pre ->
post-contrast), rank 0 runs the generator on a fixed, small subset of the
store's ``val`` split after every ``validate_every``-th epoch and reports

* ``val_mae``: mean absolute error over every pixel of the subset, on the
  datasets' ``[-1, 1]`` scale (lower is better; the sweep's default metric);
* ``val_psnr``: mean per-image PSNR in dB with data range 2 (the width of ``[-1, 1]``).

The validation dataset is the run's dataset spec with ``split=val`` and no
augmentation; the subset is the same ``validation_items`` items, evenly spread
over the split, at every epoch (deterministic: no augmentation, no shuffling), so
values of different epochs and of different runs on the same store compare.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

import torch

from breastflow.data import keys
from breastflow.data.datasets import DatasetError, StoreDataset, build_dataset
from breastflow.models.base import GanModel

#: keys the validation adds to an epoch's metrics
VAL_MAE = "val_mae"
VAL_PSNR = "val_psnr"
VAL_KEYS = (VAL_MAE, VAL_PSNR)
#: PSNR data range of the datasets' [-1, 1] scale
DATA_RANGE = 2.0
#: items of one validation forward pass
BATCH = 8


class ValidationError(ValueError):
    """Validation is on but the store or the dataset cannot give a paired ``val`` subset; the message says why."""


def validation_spec(spec: Mapping[str, Any]) -> dict[str, Any]:
    """The run's dataset spec for validation: ``split=val``, augmentation off (everything else as trained)."""
    return {**dict(spec), "split": "val", "augment": None}


def validation_dataset(store: str, dataset: str, spec: Mapping[str, Any]) -> StoreDataset:
    """The ``val`` dataset of a run, checked to hold paired items.

    Args:
        store: the store URL.
        dataset: the dataset family (``paired_phases``).
        spec: the run's (training) dataset spec; :func:`validation_spec` is applied.

    Raises:
        ValidationError: the store has no ``val`` studies (or none usable), the family does not
            support ``split``/``augment``, or its items have no real target (not image-to-image).
    """
    try:
        data = build_dataset(dataset, store, validation_spec(spec))
    except DatasetError as err:
        raise ValidationError(f"validation (validate_every > 0) needs the store's val split: {err}. Ingest studies "
                              "into the val split, or train with validate_every=0") from err
    except (ValueError, TypeError) as err:  # pydantic: the family's spec has no split/augment field
        raise ValidationError(f"validation (validate_every > 0) is not supported for dataset {dataset!r}: {err}") from err
    item = data[0]
    if keys.TARGET not in item or keys.IMAGE not in item:
        raise ValidationError(f"validation (validate_every > 0) needs a paired image-to-image dataset with "
                              f"{keys.IMAGE!r} and {keys.TARGET!r} items; {dataset!r} gives {sorted(item)}")
    return data


def subset_indices(length: int, count: int) -> list[int]:
    """``count`` item indices evenly spread over ``range(length)`` (all of them when ``length <= count``)."""
    if length <= count:
        return list(range(length))
    return [int(i * length / count) for i in range(count)]


class Validator:
    """The validation subset of one run and the metric over it.

    Args:
        store, dataset, spec: as :func:`validation_dataset`.
        items: size of the fixed subset.

    Raises:
        ValidationError: see :func:`validation_dataset`.
    """

    def __init__(self, store: str, dataset: str, spec: Mapping[str, Any], items: int) -> None:
        self.store, self.dataset, self.items = store, dataset, items
        self._load(spec)

    def _load(self, spec: Mapping[str, Any]) -> None:
        self.spec = dict(spec)
        data = validation_dataset(self.store, self.dataset, self.spec)
        picked = [data[i] for i in subset_indices(len(data), self.items)]
        self.image = torch.stack([it[keys.IMAGE] for it in picked])
        self.target = torch.stack([it[keys.TARGET] for it in picked])
        self.keys = [str(it.get(keys.KEY, "")) for it in picked]

    def set_image_size(self, size: int | None) -> None:
        """Re-read the subset at another resolution (progressive families change it during training)."""
        if size != self.spec.get("image_size"):
            self._load({**self.spec, "image_size": size})

    @torch.no_grad()
    def evaluate(self, model: GanModel) -> dict[str, float]:
        """``{"val_mae", "val_psnr"}`` of ``model.generate`` on the subset (the model's mode is restored).

        Call it with plain networks (not DDP-wrapped): rank 0 runs it alone.
        """
        was_training = any(net.training for net in model.networks.values())
        model.eval()
        try:
            outputs = [model.generate(self.image[k:k + BATCH].to(model.device)).float().cpu()
                       for k in range(0, len(self.image), BATCH)]
        finally:
            model.train(was_training)
        return paired_metrics(torch.cat(outputs), self.target.float())


def paired_metrics(synthetic: torch.Tensor, real: torch.Tensor) -> dict[str, float]:
    """``val_mae`` (over every pixel) and ``val_psnr`` (mean of per-image PSNR, data range 2) of two batches.

    Raises:
        ValueError: the batches differ in shape.
    """
    if synthetic.shape != real.shape:
        raise ValueError(f"validation: generator output {tuple(synthetic.shape)} does not match the target "
                         f"{tuple(real.shape)}")
    diff = synthetic.double() - real.double()
    mse = diff.pow(2).flatten(1).mean(dim=1)
    psnr = [10.0 * math.log10(DATA_RANGE**2 / m) if m > 0 else float("inf") for m in mse.tolist()]
    return {VAL_MAE: float(diff.abs().mean()), VAL_PSNR: float(sum(psnr) / len(psnr))}
