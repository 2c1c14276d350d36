"""The data-loader factory of the engine (layer 1 of Ray's ``torch_fashion_mnist_example.py``).

The loader is built inside each Ray worker from plain values (store URL, dataset
name and spec, batch size, seed); the dataset opens its readers lazily in the
process that reads. Under Ray Train, :func:`ray.train.torch.prepare_data_loader`
adds a ``DistributedSampler`` (each rank a disjoint shard) and moves batches to
the worker's device.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import torch
from torch.utils.data import DataLoader

from breastflow.data.datasets import StoreDataset, build_dataset


def in_ray_train() -> bool:
    """True inside a Ray Train worker (a training function launched by a ``TorchTrainer``)."""
    try:
        import ray.train

        ray.train.get_context()
    except Exception:  # noqa: BLE001 - not installed, or not inside a Ray Train session
        return False
    return True


def build_loader(store_url: str, dataset: str, spec: Mapping[str, Any], batch_size: int, seed: int,
                 loader_workers: int = 0, shuffle: bool = True,
                 distributed: bool | None = None) -> tuple[DataLoader, StoreDataset]:
    """A shuffling DataLoader over a store dataset, prepared for Ray Train when running under it.

    Args:
        store_url: local path or ``s3://`` URL of the store.
        dataset: registered dataset family (``paired_phases``).
        spec: the family's spec fields.
        batch_size: items per batch (per worker).
        seed: seeds the shuffling order (a ``torch.Generator``; under Ray the
            ``DistributedSampler`` is seeded through the epoch it is given).
        loader_workers: DataLoader worker processes (each opens its own store reader).
        shuffle: shuffle items every epoch.
        distributed: apply ``prepare_data_loader`` (default: when inside Ray Train).

    Returns:
        ``(loader, dataset)``; call ``dataset.set_epoch(e)`` and, under Ray with
        several workers, ``loader.sampler.set_epoch(e)`` before each epoch (:func:`set_loader_epoch`).

    Raises:
        breastflow.data.datasets.DatasetError: the store cannot give this dataset (see the family).
        ValueError: the dataset has fewer items than one batch.
    """
    data = build_dataset(dataset, store_url, spec)
    if len(data) < batch_size:
        raise ValueError(f"dataset {dataset} has {len(data)} items, fewer than one batch of {batch_size}; "
                         "lower batch_size or select more data")
    generator = torch.Generator().manual_seed(int(seed))
    loader = DataLoader(data, batch_size=batch_size, shuffle=shuffle, drop_last=True, num_workers=loader_workers,
                        generator=generator, persistent_workers=False, pin_memory=False)
    if distributed if distributed is not None else in_ray_train():
        from ray.train.torch import prepare_data_loader

        loader = prepare_data_loader(loader)
    return loader, data


def set_loader_epoch(loader: DataLoader, dataset: StoreDataset, epoch: int) -> None:
    """Tell the dataset (augmentation draws) and a distributed sampler (shuffle order) which epoch starts."""
    dataset.set_epoch(epoch)
    sampler = getattr(loader, "sampler", None)
    if hasattr(sampler, "set_epoch"):
        sampler.set_epoch(epoch)
