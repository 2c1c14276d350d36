"""Benchmark breastflow.metrics against peers measured in the same run.

* FID (``inception``) on N vs N 512x512 16-bit images: breastflow's
  ``frechet_distance`` vs the classic pytorch-fid recipe on the same
  TorchScript network (batched forward, ``np.cov``, ``scipy.linalg.sqrtm``).
  torch-fidelity 0.4 imports torchvision at package import (and, once
  installed, makes ``import torchmetrics`` fail without torchvision), and
  torchmetrics' FID wraps torch-fidelity's extractor, so neither can run in
  this torchvision-free environment; the recipe above is what both compute.
* SSIM + MS-SSIM on P pairs of 512x512 images: ``paired_metrics`` (float32,
  the default, and float64) vs torchmetrics' functional SSIM + MS-SSIM
  (float32, its usual use), timed ``--repeats`` times interleaved (median);
  values checked against scikit-image SSIM and torchmetrics MS-SSIM in
  float64 on a subset, where SSIM alone is also timed against scikit-image
  (per image, single-threaded scipy).
* FRD per image: breastflow's ``radiomics`` extractor with a process pool vs
  ``frd_score.compute_frd`` (its own multiprocessing pool), same workers.

Usage::

    python benchmarks/bench_metrics.py --small            # quick CPU run
    python benchmarks/bench_metrics.py --device cuda      # full size on a GPU
    python benchmarks/bench_metrics.py --json out.json
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F


def _images(n: int, size: int, seed: int, data_range: int = 4095) -> np.ndarray:
    """Smooth phantom-like 12-bit images in uint16, ``(n, size, size)``."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[:size, :size] / size
    out = np.empty((n, size, size), np.uint16)
    for i in range(n):
        fx, fy, ph = rng.uniform(2, 8), rng.uniform(2, 8), rng.uniform(0, 6.3)
        img = 0.5 + 0.3 * np.sin(2 * np.pi * fx * xx + ph) * np.cos(2 * np.pi * fy * yy)
        img += rng.normal(0, 0.05, img.shape)
        out[i] = np.clip(img * data_range, 0, data_range).astype(np.uint16)
    return out


def _timed(fn):
    t = time.perf_counter()
    value = fn()
    return value, time.perf_counter() - t


def bench_fid(n: int, device: str, batch: int) -> dict:
    from scipy import linalg

    from breastflow.metrics.features.inception import packaged_inception_path
    from breastflow.metrics.frechet import frechet_distance

    real, fake = _images(n, 512, 1), _images(n, 512, 2)
    ours, t_ours = _timed(lambda: frechet_distance(real, fake, data_range=4095, device=device, batch_size=batch))

    def peer() -> float:
        model = torch.jit.load(str(packaged_inception_path()), map_location=device).eval()

        def feats(imgs: np.ndarray) -> np.ndarray:
            out = []
            with torch.inference_mode():
                for s in range(0, len(imgs), batch):
                    x = torch.from_numpy(imgs[s : s + batch].astype(np.float32) / 4095)[:, None].to(device)
                    x = F.interpolate(x, size=(299, 299), mode="bilinear", align_corners=False, antialias=True)
                    out.append(model(x.clamp(0, 1).expand(-1, 3, -1, -1) * 2 - 1).double().cpu().numpy())
            return np.concatenate(out)

        f1, f2 = feats(real), feats(fake)
        mu1, mu2 = f1.mean(0), f2.mean(0)
        s1, s2 = np.cov(f1, rowvar=False), np.cov(f2, rowvar=False)
        covmean = linalg.sqrtm(s1.dot(s2)).real
        d = mu1 - mu2
        return float(d @ d + np.trace(s1) + np.trace(s2) - 2 * np.trace(covmean))

    ref, t_ref = _timed(peer)
    return {"n_per_set": n, "size": 512, "fid_breastflow": ours, "fid_peer": ref, "rel_diff": abs(ours - ref) / ref,
            "t_breastflow_s": t_ours, "t_peer_s": t_ref, "speedup": t_ref / t_ours}  # fmt: skip


def _median_times(fns: dict, repeats: int) -> tuple[dict, dict]:
    """Run each function ``repeats`` times, interleaved (so load changes hit all alike).

    Returns:
        ``(last value of each, median seconds of each)``.
    """
    values, times = {}, {k: [] for k in fns}
    for _ in range(repeats):
        for k, fn in fns.items():
            values[k], t = _timed(fn)
            times[k].append(t)
    return values, {k: float(np.median(v)) for k, v in times.items()}


def bench_ssim(pairs: int, device: str, batch: int, skimage_subset: int, repeats: int) -> dict:
    from skimage.metrics import structural_similarity
    from torchmetrics.functional.image import (
        multiscale_structural_similarity_index_measure as tm_ms_ssim,
    )
    from torchmetrics.functional.image import (
        structural_similarity_index_measure as tm_ssim,
    )

    from breastflow.metrics.names import MS_SSIM, SSIM
    from breastflow.metrics.paired import paired_metrics

    real = _images(pairs, 512, 3)
    rng = np.random.default_rng(4)
    fake = np.clip(real.astype(np.int32) + rng.integers(-200, 200, real.shape), 0, 4095).astype(np.uint16)

    def ours(dtype: torch.dtype):
        return lambda: paired_metrics(fake, real, 4095, metrics=(SSIM, MS_SSIM), device=device, batch_size=batch,
                                      dtype=dtype)  # fmt: skip

    def tm(dtype: torch.dtype, n: int = pairs) -> tuple[np.ndarray, np.ndarray]:
        a, b = [], []
        for s in range(0, n, batch):
            x = torch.from_numpy(fake[s : min(s + batch, n)].astype(np.float64))[:, None].to(device, dtype)
            y = torch.from_numpy(real[s : min(s + batch, n)].astype(np.float64))[:, None].to(device, dtype)
            a.append(tm_ssim(x, y, data_range=4095.0, reduction="none").cpu())
            b.append(tm_ms_ssim(x, y, data_range=4095.0, reduction="none").cpu())
        return torch.cat(a).double().numpy(), torch.cat(b).double().numpy()

    vals, med = _median_times(
        {"f32": ours(torch.float32), "f64": ours(torch.float64), "tm": lambda: tm(torch.float32)}, repeats
    )
    _, tm_ms_f64 = tm(torch.float64, skimage_subset)  # value reference: torchmetrics in float64
    k = skimage_subset
    kw = {"gaussian_weights": True, "sigma": 1.5, "use_sample_covariance": False, "data_range": 4095}
    alone, med_alone = _median_times(
        {"sk": lambda: np.array([structural_similarity(fake[i], real[i], **kw) for i in range(k)]),
         "f32": lambda: paired_metrics(fake[:k], real[:k], 4095, metrics=(SSIM,), device=device, batch_size=batch)},
        repeats,
    )  # fmt: skip
    sk, t_sk = alone["sk"], med_alone["sk"]
    res = {"pairs": pairs, "size": 512, "repeats": repeats,
           "t_breastflow_f32_s": med["f32"], "t_breastflow_f64_s": med["f64"], "t_torchmetrics_f32_s": med["tm"],
           "speedup_f32_vs_torchmetrics": med["tm"] / med["f32"], "speedup_f64_vs_torchmetrics": med["tm"] / med["f64"],
           "t_skimage_ssim_per_pair_s": t_sk / k, "t_breastflow_f32_ssim_per_pair_s": med_alone["f32"] / k,
           "speedup_ssim_f32_vs_skimage": t_sk / med_alone["f32"]}  # fmt: skip
    for name in ("f32", "f64"):
        out = vals[name].per_case
        res[f"ssim_{name}"], res[f"ms_ssim_{name}"] = float(out[SSIM].mean()), float(out[MS_SSIM].mean())
        res[f"max_abs_ssim_{name}_vs_skimage"] = float(np.abs(out[SSIM][:k] - sk).max())
        res[f"max_abs_ms_ssim_{name}_vs_torchmetrics_f64"] = float(np.abs(out[MS_SSIM][:k] - tm_ms_f64).max())
    res["max_abs_ms_ssim_f32_vs_torchmetrics_f32"] = float(np.abs(vals["f32"].per_case[MS_SSIM] - vals["tm"][1]).max())
    res["max_abs_ssim_f32_vs_torchmetrics_reflect"] = float(np.abs(vals["f32"].per_case[SSIM] - vals["tm"][0]).max())
    return res


def bench_frd(n: int, size: int, workers: int) -> dict:
    from PIL import Image

    from breastflow.metrics.frechet import frechet_distance

    real = (_images(n, size, 5) // 16).astype(np.uint8)
    fake = (_images(n, size, 6) // 16).astype(np.uint8)
    os.environ["BREASTFLOW_RADIOMICS_WORKERS"] = str(workers)
    res = {"n_per_set": n, "size": size, "workers": workers}
    with tempfile.TemporaryDirectory() as tmp:
        for name, imgs in (("real", real), ("fake", fake)):
            (Path(tmp) / name).mkdir()
            for i, im in enumerate(imgs):
                Image.fromarray(im).save(Path(tmp) / name / f"{i:04d}.png")
        from frd_score.frd import compute_frd

        dirs = [str(Path(tmp) / "real"), str(Path(tmp) / "fake")]
        for ext, ver in (("radiomics-v0", "v0"), ("radiomics", "v1")):
            ours, t_ours = _timed(lambda ext=ext: frechet_distance(real, fake, extractor=ext))
            ref, t_ref = _timed(lambda ver=ver: compute_frd(dirs, frd_version=ver, num_workers=workers))
            res[ver] = {"frd_breastflow": ours, "frd_score": ref, "rel_diff": abs(ours - ref) / abs(ref),
                        "t_breastflow_per_image_s": t_ours / (2 * n), "t_frd_score_per_image_s": t_ref / (2 * n),
                        "speedup": t_ref / t_ours}  # fmt: skip
    return res


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--small", action="store_true", help="reduced sizes for a CPU run")
    p.add_argument("--device", default="cpu")
    p.add_argument("--workers", type=int, default=os.cpu_count() or 1, help="FRD process-pool workers")
    p.add_argument("--json", type=Path, default=None)
    p.add_argument("--skip", nargs="*", default=[], choices=["fid", "ssim", "frd"])
    p.add_argument("--repeats", type=int, default=3, help="SSIM timings: interleaved runs, median reported")
    a = p.parse_args()
    sizes = (
        {"fid_n": 48, "ssim_pairs": 96, "frd_n": 24, "frd_size": 128, "skimage_subset": 8}
        if a.small
        else {"fid_n": 2000, "ssim_pairs": 5000, "frd_n": 200, "frd_size": 256, "skimage_subset": 100}
    )
    batch = 16 if a.device == "cpu" else 100
    out = {"device": a.device, "torch": torch.__version__, "threads": torch.get_num_threads(),
           "cpus": os.cpu_count(), "machine": platform.processor() or platform.machine(), "sizes": sizes,
           "loadavg_start": os.getloadavg()}  # fmt: skip
    if "fid" not in a.skip:
        out["fid"] = bench_fid(sizes["fid_n"], a.device, batch)
        print(json.dumps(out["fid"], indent=1), flush=True)
    if "ssim" not in a.skip:
        out["ssim"] = bench_ssim(sizes["ssim_pairs"], a.device, batch, sizes["skimage_subset"], a.repeats)
        print(json.dumps(out["ssim"], indent=1), flush=True)
    if "frd" not in a.skip:
        out["frd"] = bench_frd(sizes["frd_n"], sizes["frd_size"], a.workers)
        print(json.dumps(out["frd"], indent=1), flush=True)
    out["loadavg_end"] = os.getloadavg()
    print("load average (1, 5, 15 min) at start", out["loadavg_start"], "at end", out["loadavg_end"])
    if a.json:
        a.json.write_text(json.dumps(out, indent=1))


if __name__ == "__main__":
    main()
