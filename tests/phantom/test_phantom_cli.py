"""The `breastflow phantom` command: options, errors, saved config."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest
from click.testing import CliRunner

from breastflow.cli import main
from breastflow.phantom.config import PhantomConfig


def _run(*args: str):  # type: ignore[no-untyped-def]
    return CliRunner().invoke(main, ["phantom", *args])


def test_help_lists_every_option() -> None:
    result = _run("--help")
    assert result.exit_code == 0
    for option in ("--studies", "--seed", "--profile", "--modality", "--transfer-syntax", "--t2-fraction",
                   "--workers", "--progress", "tiny", "realistic", "jpeg2000-lossless", "jpegls-lossless", "rle"):
        assert option in result.output, option


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--studies", "0", "--seed", "1"], "must be >= 1"),
        (["--studies", "-3", "--seed", "1"], "must be >= 1"),
        (["--studies", "2", "--seed", "-1"], "--seed"),
        (["--studies", "2", "--seed", "1", "--profile", "huge"], "'huge' is not one of"),
        (["--studies", "2", "--seed", "1", "--modality", "ct"], "'ct' is not one of"),
        (["--studies", "2", "--seed", "1", "--transfer-syntax", "jpeg-lossy"], "is not one of"),
        (["--studies", "2", "--seed", "1", "--t2-fraction", "1.5"], "t2_fraction"),
        (["--studies", "2", "--seed", "1", "--workers", "0"], "must be >= 1"),
        (["--seed", "1"], "Missing option '--studies'"),
    ],
)
def test_bad_arguments_fail_clearly(tmp_path: Path, args: list[str], message: str) -> None:
    result = _run(str(tmp_path / "out"), *args)
    assert result.exit_code == 2
    assert message in result.output
    assert not (tmp_path / "out" / "dicom").exists()


def test_refuses_foreign_folder_and_file(tmp_path: Path) -> None:
    (tmp_path / "notes.txt").write_text("mine")
    result = _run(str(tmp_path), "--studies", "1", "--seed", "0")
    assert result.exit_code == 2 and "not an earlier phantom output" in result.output
    assert (tmp_path / "notes.txt").read_text() == "mine"
    result = _run(str(tmp_path / "notes.txt"), "--studies", "1", "--seed", "0")
    assert result.exit_code != 0


def test_writes_cohort_and_config_and_reruns_in_place(tmp_path: Path) -> None:
    out = tmp_path / "cohort"
    args = [str(out), "--studies", "3", "--seed", "5", "--transfer-syntax", "rle",
            "--transfer-syntax", "explicit-le", "--t2-fraction", "0", "--no-progress"]
    result = _run(*args)
    assert result.exit_code == 0, result.output
    config = PhantomConfig.model_validate(json.loads((out / "phantom_config.json").read_text()))
    assert config.studies == 3 and config.seed == 5 and [t.value for t in config.transfer_syntaxes] == [
        "rle", "explicit-le"]
    cohort = pd.read_csv(out / "cohort.csv")
    assert list(cohort["transfer_syntax"]) == ["rle", "explicit-le", "rle"]
    assert not cohort["has_t2"].any()
    assert {p.name for p in out.iterdir()} == {"phantom_config.json", "cohort.csv", "lesions.csv", "phi.json",
                                               "dicom", "truth"}
    result = _run(str(out), "--studies", "1", "--seed", "5", "--no-progress")
    assert result.exit_code == 0, result.output
    assert sorted(p.name for p in (out / "dicom").iterdir()) == ["PH0000"]


def _file_bytes(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


def test_default_workers_use_the_available_cores_and_do_not_change_the_files(tmp_path: Path) -> None:
    import os

    from breastflow.phantom.cohort import available_cpus, default_workers

    assert available_cpus() == len(os.sched_getaffinity(0))
    config = PhantomConfig(studies=3, seed=4)
    assert 1 <= default_workers(config) <= min(available_cpus(), 3)
    assert default_workers(PhantomConfig(studies=1, seed=4)) == 1
    assert "one per available CPU core" in " ".join(_run("--help").output.split())
    args = ["--studies", "3", "--seed", "4", "--t2-fraction", "0.5", "--no-progress"]
    assert _run(str(tmp_path / "default"), *args).exit_code == 0
    assert _run(str(tmp_path / "one"), *args, "--workers", "1").exit_code == 0
    default, one = _file_bytes(tmp_path / "default"), _file_bytes(tmp_path / "one")
    assert default == one and len(default) > 50
