"""The learning proof (slow): a short CPU Pix2PixHD run beats the identity and linear baselines on held-out studies.

Runs :func:`bench_pix2pixhd_learning.run`: a 48-study phantom (38 train / 10
held-out studies, 1502 held-out lesion-box voxels), ingest, in-process training
of Pix2PixHD (LSGAN + feature matching, perceptual off, pix2pix's pixel L1 x100
added; one downsampling, 9 residual blocks) for 12 CPU minutes, generation of the
held-out val + test studies and the comparison on the per-case scale.

The phantom is written with ``lesion_t1_scale=0.7``: every lesion is a
hypointense mass before contrast, so the pre-contrast image carries *where* the
lesion is. With the default phantom (lesions nearly isointense to the
fibroglandular tissue before contrast) no learner we tried places the lesion
enhancement - not even a plain L1 CNN, which halves the whole-image MAE - so the
lesion-box criterion measures the phantom there, not the model
(``docs/train_results.md``, runs 11-16).

Measured (run 15 of ``docs/train_results.md``): lesion-box MAE 0.222 vs identity
0.284 and linear 0.249; whole-image MAE 0.037 vs 0.046 / 0.050; PSNR 28.6 vs
25.0 / 25.2; SSIM 0.889 vs 0.875 / 0.857.
"""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "benchmarks"))

from bench_pix2pixhd_learning import LearningSettings, run

#: docs/train_results.md run 15
SETTINGS = LearningSettings(studies=48, split_seed=0, lesion_t1_scale=0.7, minutes=12.0, n_downsample=1, n_blocks=9,
                            lambda_l1=100.0, lesion_weight=10, threads=1)


@pytest.mark.slow
def test_short_training_beats_identity_and_linear_on_held_out_studies(tmp_path):
    report = run(tmp_path / "learn", SETTINGS)
    figures = {row["candidate"]: row for row in report["figures"]}
    assert report["held_out_studies"] >= 5 and figures["model"]["lesion_voxels"] > 500
    model, identity, linear = (figures[c] for c in ("model", "identity", "linear"))
    for lower_is_better in ("mae_lesion", "mae"):
        assert model[lower_is_better] < min(identity[lower_is_better], linear[lower_is_better]), figures
    assert model["psnr"] > max(identity["psnr"], linear["psnr"]), figures
