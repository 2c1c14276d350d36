"""The learning proof (slow): a short CPU Pix2PixHD run beats the identity and linear baselines in the lesion boxes.

Runs :func:`bench_pix2pixhd_learning.run` (12-study phantom, ingest, in-process
training with perceptual off, generation of the held-out val + test studies,
comparison on the per-case scale). The figures it produced are in docs/train_results.md.
"""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "benchmarks"))

from bench_pix2pixhd_learning import LearningSettings, run


@pytest.mark.slow
def test_short_training_beats_identity_and_linear_in_the_lesion_boxes(tmp_path):
    report = run(tmp_path / "learn", LearningSettings(minutes=8.0))
    figures = {row["candidate"]: row for row in report["figures"]}
    assert report["held_out_studies"] >= 3 and figures["model"]["lesion_voxels"] > 0
    model, identity, linear = (figures[c]["mae_lesion"] for c in ("model", "identity", "linear"))
    assert model < identity, figures
    assert model < linear, figures
