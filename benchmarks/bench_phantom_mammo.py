"""Benchmark: how long one mammography phantom view takes to generate and to write.

For each vendor style and size profile it times, per view (best of ``--repeat``):

* ``render``: anatomy (``render_view``) + detector noise and tone curve (``present``);
* ``write[<syntax>]``: building the header and saving the file in each transfer syntax;

and, as the peer measured in the same run, ``floor``: writing the same pixels
as an explicit-VR-little-endian file with a minimal header (the cost of simply
putting that many pixels on disk with pydicom). Ratios are ``render / floor``.

Run: ``.venv/bin/python benchmarks/bench_phantom_mammo.py [--repeat 3] [--profiles tiny realistic]``
"""

from __future__ import annotations

import argparse
import tempfile
import time
from collections.abc import Callable
from functools import partial
from pathlib import Path

import numpy as np
from pydicom.dataset import Dataset

from breastflow.phantom.config import Profile, TransferSyntax
from breastflow.phantom.dicom_io import save, set_pixels
from breastflow.phantom.mammo import MG_FOR_PRESENTATION, view_matrix
from breastflow.phantom.mammo_anatomy import BreastShape, draw_breast_shape, render_view
from breastflow.phantom.mammo_vendors import MAMMO_VENDORS, MammoVendorStyle, present
from breastflow.phantom.mammo_views import VIEWS, Density


def _best(fn: Callable[[], object], repeat: int) -> float:
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return min(times)


def _write(pixels: np.ndarray, bits: int, path: Path, syntax: TransferSyntax) -> None:
    ds = Dataset()
    ds.SOPClassUID, ds.SOPInstanceUID = MG_FOR_PRESENTATION, "1.2.3.4"
    set_pixels(ds, pixels, bits)
    save(ds, path, syntax)


def _render(shape: BreastShape, matrix: tuple[int, int], spacing: float,
            style: MammoVendorStyle) -> np.ndarray:
    """One LMLO view (the view with the most structures), density C, no lesion."""
    rng = np.random.default_rng(1)
    rendered = render_view(VIEWS[1], shape, Density.C, [], matrix, spacing, rng)
    return present(rendered.attenuation, rendered.breast, style, rng)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--profiles", nargs="+", default=["tiny", "realistic"])
    args = parser.parse_args()
    header = f"{'profile':10s} {'vendor':8s} {'matrix':>10s} {'render_s':>9s} {'floor_s':>8s} {'ratio':>6s}  "
    header += "  ".join(f"write[{s.value}]" for s in TransferSyntax)
    print(header)
    with tempfile.TemporaryDirectory() as tmp:
        for profile in (Profile(p) for p in args.profiles):
            for name in MAMMO_VENDORS.names():
                style = MAMMO_VENDORS.get(name)
                matrix, spacing = view_matrix(style, profile)
                shape = draw_breast_shape(np.random.default_rng(0))
                render = partial(_render, shape=shape, matrix=matrix, spacing=spacing, style=style)
                render_s = _best(render, args.repeat)
                pixels = render()
                path = Path(tmp) / "x.dcm"
                floor = partial(_write, pixels, style.bits_stored, path, TransferSyntax.EXPLICIT_LE)
                floor_s = _best(floor, args.repeat)
                bits = style.bits_stored
                writes = [_best(partial(_write, pixels, bits, path, s), 1) for s in TransferSyntax]
                print(f"{profile.value:10s} {name:8s} {matrix[0]:>5d}x{matrix[1]:<4d} {render_s:9.3f} "
                      f"{floor_s:8.3f} {render_s / floor_s:6.1f}  " + "  ".join(f"{w:.3f}" for w in writes))


if __name__ == "__main__":
    main()
