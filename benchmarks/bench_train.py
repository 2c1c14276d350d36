"""Training images/s per worker, breastflow vs stock pix2pixHD settings, and loader slices/s vs that consumption (one run).

Usage::

    python benchmarks/bench_train.py [--device cpu|cuda] [--cases 128x16,64x64] [--batch 1] [--steps 3]
                                     [--rounds 5] [--compile] [--loader-n 96] [--no-s3] [--json PATH]

Part 1, training (``Pix2PixHD.train_step``: G forward, D on the fake and real pairs, G and D
backward and Adam steps; the full pix2pixHD layout: 4 downsamplings, 9 residual blocks, 2
discriminators of 3 layers) for each ``SIZExNGF`` case (``ndf = ngf``), two contenders on
the same network code (``build_model("pix2pixhd", ...)``):

* ``breastflow``: input 1 channel (grey), output 1, batch ``--batch`` (default 1, the engine's
  default); fp32 on CPU; on CUDA bf16 autocast, channels-last, and ``torch.compile`` with
  ``--compile`` (what ``breastflow.train.worker`` does);
* ``stock``: NVIDIA pix2pixHD's defaults: batch 1, fp32, input and output 3 channels (the grey
  slice replicated to RGB inside the timed step, as an RGB data loader would hand it), no
  channels-last, no compile.

The VGG19 perceptual term is OFF for both (no VGG weights offline); with it on, both
would pay the same extra VGG forward/backward per image (3-channel VGG input either way).
Contenders alternate round by round (order flipped every round) after warm-up steps; the
figure is the median over rounds of the per-step wall time (CUDA synchronised) and, on
CPU, of the process CPU time (``time.process_time``), which the shared machine's load
disturbs less. ``ratio_*`` = breastflow / stock per image.

Part 2, loader: the engine's loader factory (``breastflow.train.loader.build_loader``,
``paired_phases`` with the paper's rot90 augmentation, ``image_size`` = the case's size,
``loader_workers`` 0 = the engine's default, so loading runs in the training process) over
synthetic stores of 4 studies x ``--loader-slices`` slices stored at each size, so nothing is
resampled (``bench_paired_loader.synthetic_store``), written locally (read through the OS
page cache once warm) and on a moto S3 endpoint on 127.0.0.1 (in-process server: its CPU time counts in this process, so S3 is
reported in wall time). Local and S3 alternate round by round. ``loader_over_train`` =
loader slices/s / training images/s of the breastflow contender: above 1 the loader keeps up;
with ``loader_workers`` 0 the share of a step spent loading is ``1 / (1 + loader_over_train)``.
``--loader-sizes`` (default 512, paper 003's size) adds loader-only figures at sizes not trained
here, e.g. what a GPU worker at 512x512 would draw from.

Prints (and with ``--json`` writes) one JSON document with the load average before and after.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import statistics
import sys
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import torch

from breastflow.data import keys
from breastflow.models import GanModel, build_model


@dataclass(frozen=True)
class Contender:
    """One training setting.

    Attributes:
        name: ``breastflow`` or ``stock``.
        channels: input and output channels of the networks (1 grey; 3 RGB replication).
        batch: images per step; channels_last, bf16, compile: CUDA-only options.
    """

    name: str
    channels: int
    batch: int
    channels_last: bool
    bf16: bool
    compile: bool


def contenders(device: torch.device, batch: int, compile_: bool) -> list[Contender]:
    """``breastflow`` (engine settings on ``device``) and ``stock`` (pix2pixHD defaults)."""
    cuda = device.type == "cuda"
    return [Contender("breastflow", 1, batch, cuda, cuda, cuda and compile_),
            Contender("stock", 3, 1, False, False, False)]


def build(contender: Contender, ngf: int, device: torch.device) -> GanModel:
    """The pix2pixhd model of a contender (perceptual off), on ``device``, wrapped as the engine wraps it."""
    model = build_model("pix2pixhd", {"input_nc": contender.channels, "output_nc": contender.channels,
                                      "ngf": ngf, "ndf": ngf, "perceptual": "off"})
    model.to(device)
    if contender.channels_last:
        model.wrap_networks(lambda name, net: net.to(memory_format=torch.channels_last))
    if contender.compile:
        model.wrap_networks(lambda name, net: torch.compile(net))
    model.train()
    return model


def step_function(model: GanModel, contender: Contender, size: int, device: torch.device) -> Callable[[], None]:
    """One timed training step: host grey batch -> (RGB replication) -> device -> ``train_step``."""
    generator = torch.Generator().manual_seed(0)
    image = torch.rand((contender.batch, 1, size, size), generator=generator) * 2 - 1
    target = (image * 1.2 + 0.1).clamp(-1, 1)
    autocast = (lambda: torch.autocast("cuda", dtype=torch.bfloat16)) if contender.bf16 else contextlib.nullcontext

    def to_device(x: torch.Tensor) -> torch.Tensor:
        if contender.channels == 3:
            x = x.expand(-1, 3, -1, -1).contiguous()
        x = x.to(device, non_blocking=True)
        return x.contiguous(memory_format=torch.channels_last) if contender.channels_last else x

    def step() -> None:
        with autocast():
            model.train_step({keys.IMAGE: to_device(image), keys.TARGET: to_device(target)})

    return step


def timed(run: Callable[[], None], repeats: int, cuda: bool) -> tuple[float, float]:
    """Mean (wall s, CPU s) of one call of ``run`` over ``repeats`` calls."""
    if cuda:
        torch.cuda.synchronize()
    wall, cpu = time.perf_counter(), time.process_time()
    for _ in range(repeats):
        run()
    if cuda:
        torch.cuda.synchronize()
    return (time.perf_counter() - wall) / repeats, (time.process_time() - cpu) / repeats


def alternate(runners: dict[str, Callable[[], None]], repeats: int, rounds: int,
              cuda: bool = False) -> dict[str, dict[str, list[float]]]:
    """Per-round mean wall/CPU seconds of each runner; the order flips every round."""
    out = {name: {"wall": [], "cpu": []} for name in runners}
    names = list(runners)
    for r in range(rounds):
        for name in names if r % 2 == 0 else names[::-1]:
            wall, cpu = timed(runners[name], repeats, cuda)
            out[name]["wall"].append(wall)
            out[name]["cpu"].append(cpu)
    return out


def bench_training(size: int, ngf: int, args: argparse.Namespace, device: torch.device) -> dict[str, Any]:
    """Part 1 for one case; returns per-contender figures and the breastflow/stock ratios."""
    cuda = device.type == "cuda"
    models, steps = {}, {}
    for contender in contenders(device, args.batch, args.compile):
        torch.manual_seed(0)
        models[contender.name] = (contender, build(contender, ngf, device))
        steps[contender.name] = step_function(models[contender.name][1], contender, size, device)
        timed(steps[contender.name], args.warmup, cuda)  # allocator, oneDNN/cuDNN choice, compile
    times = alternate(steps, args.steps, args.rounds, cuda)
    result: dict[str, Any] = {"size": size, "ngf": ngf, "ndf": ngf}
    for name, (contender, model) in models.items():
        wall, cpu = statistics.median(times[name]["wall"]), statistics.median(times[name]["cpu"])
        result[name] = {"settings": asdict(contender), "images_per_s": round(contender.batch / wall, 3),
                        "wall_s_per_step": round(wall, 4), "wall_s_per_step_rounds": [round(t, 4) for t in times[name]["wall"]],
                        "parameters": model.parameter_counts()}
        if not cuda:
            result[name]["cpu_s_per_image"] = round(cpu / contender.batch, 4)
    bf, stock = result["breastflow"], result["stock"]
    result["ratio_images_per_s_wall"] = round(bf["images_per_s"] / stock["images_per_s"], 3)
    if not cuda:
        result["ratio_images_per_cpu_s"] = round(stock["cpu_s_per_image"] / bf["cpu_s_per_image"], 3)
    return result


def _paired_loader_module():
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    import bench_paired_loader

    return bench_paired_loader


@contextlib.contextmanager
def s3_endpoint(enabled: bool) -> Iterator[str | None]:
    """A bucket on a moto S3 server on 127.0.0.1 (environment set for s3fs), or ``None`` when disabled."""
    if not enabled:
        yield None
        return
    from breastflow.store.local_s3 import local_s3

    with local_s3() as server:
        bucket = f"bench-{uuid.uuid4().hex[:8]}"
        server.make_bucket(bucket)
        yield bucket


def stores(root: Path, size: int, slices: int, studies: int, bucket: str | None) -> dict[str, str]:
    """Synthetic stores (pre, post_1, lesion mask) of ``(slices, size, size)``: under ``root`` and, with a bucket, on S3."""
    make = _paired_loader_module().synthetic_store
    shape = (slices, size, size)
    urls = {"local": make(str(root / f"store-{size}"), studies, shape).url}
    if bucket is not None:
        urls["s3"] = make(f"s3://{bucket}/store-{size}", studies, shape).url
    return urls


def bench_loader(urls: dict[str, str], size: int, batch: int, n: int, rounds: int) -> dict[str, Any]:
    """Part 2 for one image size: slices/s of the engine's loader (0 workers) per store, alternating."""
    from breastflow.train.loader import build_loader

    spec = {"targets": ["post_1"], "image_size": size, "augment": {}}
    iterators: dict[str, Iterator[Any]] = {}
    for name, url in urls.items():
        loader, _ = build_loader(url, "paired_phases", spec, batch, seed=0, loader_workers=0, distributed=False)

        def forever(loader: Any = loader) -> Iterator[Any]:
            while True:
                yield from loader

        iterators[name] = forever()
        next(iterators[name])  # readers open lazily, intensity units read once (a worker's first item)
    batches = max(1, n // batch)
    runners = {name: (lambda it=it: [next(it) for _ in range(batches)] and None) for name, it in iterators.items()}
    times = alternate(runners, 1, rounds)
    out: dict[str, Any] = {"size": size, "batch": batch, "items_per_round": batches * batch}
    for name in urls:
        wall, cpu = statistics.median(times[name]["wall"]), statistics.median(times[name]["cpu"])
        out[name] = {"slices_per_s": round(batches * batch / wall, 1),
                     "cpu_ms_per_slice": round(1e3 * cpu / (batches * batch), 2)}
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--device", default="cpu", help="cpu or cuda (bf16, channels-last for breastflow)")
    parser.add_argument("--cases", default=None,
                        help="comma-separated SIZExNGF (default: 128x16,64x64 on CPU, 512x64 on CUDA)")
    parser.add_argument("--batch", type=int, default=1, help="breastflow batch per worker (stock: always 1)")
    parser.add_argument("--steps", type=int, default=3, help="steps per contender per round")
    parser.add_argument("--warmup", type=int, default=2)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--compile", action="store_true", help="torch.compile breastflow's networks (CUDA)")
    parser.add_argument("--threads", type=int, default=None, help="torch intra-op threads (default: torch's)")
    parser.add_argument("--loader-n", type=int, default=96, help="slices per loader round (0: skip part 2)")
    parser.add_argument("--loader-rounds", type=int, default=3)
    parser.add_argument("--no-s3", action="store_true", help="loader on the local store only")
    parser.add_argument("--loader-sizes", default="512",
                        help="extra slice sizes to measure the loader at (no training comparison); '' for none")
    parser.add_argument("--loader-slices", type=int, default=16, help="slices per study of the loader stores")
    parser.add_argument("--json", type=Path, default=None)
    args = parser.parse_args()
    device = torch.device(args.device)
    if args.threads:
        torch.set_num_threads(args.threads)
    cases = args.cases or ("512x64" if device.type == "cuda" else "128x16,64x64")
    parsed = [tuple(int(v) for v in case.lower().split("x")) for case in cases.split(",")]
    report: dict[str, Any] = {"device": str(device), "torch": torch.__version__, "threads": torch.get_num_threads(),
                              "cpu_count": os.cpu_count(), "loadavg_before": os.getloadavg(),
                              "perceptual": "off (no VGG19 weights offline; same cost for both contenders)",
                              "training": [], "loader": []}
    if device.type == "cuda":
        report["gpu"] = torch.cuda.get_device_name(device)
    t0 = time.perf_counter()
    for size, ngf in parsed:
        report["training"].append(bench_training(size, ngf, args, device))
        print(json.dumps(report["training"][-1]), flush=True)
    if args.loader_n > 0:
        consumed = {size: (trained["breastflow"]["images_per_s"], ngf)
                    for (size, ngf), trained in zip(parsed, report["training"], strict=True)}
        extra = [int(v) for v in args.loader_sizes.split(",") if v] if args.loader_sizes else []
        with s3_endpoint(not args.no_s3) as bucket, tempfile.TemporaryDirectory(prefix="bench-train-") as root:
            for size in dict.fromkeys([*consumed, *extra]):
                urls = stores(Path(root), size, args.loader_slices, 4, bucket)
                figures = bench_loader(urls, size, args.batch, args.loader_n, args.loader_rounds)
                if size in consumed:
                    figures["train_images_per_s"], figures["ngf"] = consumed[size]
                    for name in urls:
                        figures[name]["loader_over_train"] = round(figures[name]["slices_per_s"] / consumed[size][0], 1)
                report["loader"].append(figures)
                print(json.dumps(figures), flush=True)
    report["loadavg_after"] = os.getloadavg()
    report["wall_s"] = round(time.perf_counter() - t0, 1)
    text = json.dumps(report, indent=1)
    print(text)
    if args.json is not None:
        args.json.write_text(text)


if __name__ == "__main__":
    main()
