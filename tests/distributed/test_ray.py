"""Two Ray Train workers on one machine: Ray's TensorflowTrainer launches, trainkit trains.

Runs examples/ray_train.py, the script the docs show. Skipped without `ray[train]`,
which trainkit does not depend on: `bash dev/test_ray.sh` installs it and runs this file.

* Two Ray workers end within the multi-worker tolerance of one device, from the same
  starting weights; only the chief's run folder is kept, and Ray's storage gets no
  checkpoint.
* A worker that dies mid-run makes Ray start both workers again (`max_failures=1`); they
  resume the chief's last checkpoint and end bitwise equal to the uninterrupted Ray run.
"""

from __future__ import annotations

import glob
import os
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("ray.train.tensorflow", reason='needs `pip install "ray[train]"`')

SCRIPT = Path(__file__).resolve().parents[2] / "examples" / "ray_train.py"


def run_script(logs_dir: Path, weights: Path, *extra: str) -> str:
    """examples/ray_train.py in a process of its own; its output (Ray's workers' too)."""
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2", "RAY_DEDUP_LOGS": "0"}
    env.pop("TF_CONFIG", None)
    # Ray's session folder holds Unix sockets, whose paths must stay short (108 bytes).
    ray_temp = tempfile.mkdtemp(prefix="tkray-", dir="/tmp")
    command = [sys.executable, str(SCRIPT), "--logs-dir", str(logs_dir)]
    command += ["--weights-out", str(weights), "--ray-temp-dir", ray_temp, *extra]
    try:
        done = subprocess.run(
            command, capture_output=True, text=True, env=env, timeout=600, check=False
        )
    finally:
        shutil.rmtree(ray_temp, ignore_errors=True)
    output = done.stdout + done.stderr
    assert done.returncode == 0, output[-4000:]
    return output


def weights(path: Path) -> list[np.ndarray]:
    with np.load(path) as saved:
        return [saved[key] for key in saved.files]


def starts(output: str) -> list[int]:
    """The iter each attempt of the chief started from (Ray prints each line twice)."""
    found = [int(n) for n in re.findall(r"\bSTART (\d+)", output)]
    return sorted(set(found))


@pytest.fixture(scope="module")
def runs(tmp_path_factory) -> dict[str, Path]:
    """One uninterrupted 2-worker Ray run and one single-device run, same start."""
    folder = tmp_path_factory.mktemp("ray")
    run_script(folder / "single", folder / "single.npz", "--single-device")
    output = run_script(folder / "logs", folder / "ray.npz", "--workers", "2")
    assert starts(output) == [0]
    return {"folder": folder, "single": folder / "single.npz", "ray": folder / "ray.npz"}


@pytest.mark.timeout(900)
def test_two_ray_workers_match_one_device_and_only_the_chief_keeps_a_run_folder(runs):
    for ours, theirs in zip(weights(runs["ray"]), weights(runs["single"]), strict=True):
        # the tolerance of another worker count (tests/distributed/test_multi_worker.py)
        np.testing.assert_allclose(ours, theirs, rtol=1e-4, atol=1e-5)
    logs = runs["folder"] / "logs"
    run_folders = [p for p in glob.glob(str(logs / "*")) if Path(p).name != "ray"]
    assert len(run_folders) == 1  # the other worker wrote a temporary folder only
    assert Path(run_folders[0], "ckpt-000000036-12", "manifest.json").is_file()
    # Ray's storage holds its run's marker and nothing else: trainkit keeps the checkpoints.
    assert not [p for p in (logs / "ray").rglob("*") if p.name.startswith("checkpoint")]


@pytest.mark.timeout(900)
def test_a_worker_lost_on_ray_is_restarted_and_resumes_bitwise(tmp_path, runs):
    logs = tmp_path / "logs"
    # --max-failures implies --resume: the first start finds no checkpoint, the second does.
    output = run_script(
        logs, tmp_path / "resumed.npz", "--max-failures", "1", "--fail-once-at", "20"
    )
    assert (logs / "failed-once").is_file()  # worker 1 died after iter 20
    # Ray started both workers again; they resumed the checkpoint of iter 18, in the same
    # run folder.
    assert starts(output) == [0, 18], f"the chief started from {starts(output)}"
    assert len(glob.glob(str(logs / "M*"))) == 1
    for ours, theirs in zip(weights(tmp_path / "resumed.npz"), weights(runs["ray"]), strict=True):
        np.testing.assert_array_equal(ours, theirs)
