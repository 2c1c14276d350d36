"""The contract under real DistributedDataParallel (gloo, 2 processes on loopback): Pix2PixHD's train_step,
with its three discriminator passes and frozen D during the generator loss, keeps the ranks in sync."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
import torch.distributed as dist
import torch.multiprocessing as mp
from model_helpers import TINY_OFF
from torch.nn.parallel import DistributedDataParallel

from breastflow.data import keys

pytestmark = pytest.mark.skipif(not dist.is_available(), reason="torch.distributed not available")


def _worker(rank: int, init: str, out: str) -> None:
    from breastflow.models import build_model

    dist.init_process_group("gloo", init_method=init, rank=rank, world_size=2)
    try:
        torch.manual_seed(0)  # same init on both ranks, as DDP's broadcast would make it anyway
        model = build_model("pix2pixhd", TINY_OFF)
        model.wrap_networks(lambda name, net: DistributedDataParallel(net))
        torch.manual_seed(1 + rank)  # different data per rank
        for _ in range(3):
            x = torch.rand(2, 1, 16, 16) * 2 - 1
            model.train_step({keys.IMAGE: x, keys.TARGET: -x})
        torch.save(model.state_dict()["networks"], f"{out}/{rank}.pt")
    finally:
        dist.destroy_process_group()


def test_ddp_ranks_stay_in_sync(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GLOO_SOCKET_IFNAME", "lo")  # loopback only
    mp.spawn(_worker, args=(f"file://{tmp_path}/init", str(tmp_path)), nprocs=2)
    rank0 = torch.load(tmp_path / "0.pt", weights_only=True)
    rank1 = torch.load(tmp_path / "1.pt", weights_only=True)
    assert set(rank0) == {"generator", "discriminator"}
    for net, params in rank0.items():
        assert not any(k.startswith("module.") for k in params)  # saved unwrapped
        for key, value in params.items():
            assert torch.allclose(value, rank1[net][key]), (net, key)
