"""Two processes under torchrun (gloo on CPU) train the tiny preset and write one run."""

import os
import subprocess
import sys
from pathlib import Path

import pytest

from test_train_kill import _zip
from train.loop import snapshot as S

REPO = Path(__file__).resolve().parents[1]


@pytest.mark.slow
def test_torchrun_two_processes(tmp_path):
    data = tmp_path / "data.zip"
    _zip(data)
    env = {**os.environ, "BIRDANIM_CACHE": str(tmp_path / "cache")}
    cmd = [sys.executable, "-m", "torch.distributed.run", "--nproc-per-node", "2", "-m", "train.loop.train",
           "--preset", "tiny", "--disc", "classic", "--loss", "logistic", "--data", str(data), "--outdir", str(tmp_path / "runs"),
           "--kimg", "0.016", "--threads", "1", "--no-progress"]
    res = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=300, cwd=REPO)
    assert res.returncode == 0, res.stderr[-3000:]
    assert "2 process(es)" in res.stdout
    runs = list((tmp_path / "runs").iterdir())
    assert len(runs) == 1  # only rank 0 writes
    tensors, state = S.load_snapshot(S.snapshot_of_run(runs[0]))
    assert state["images_seen"] == 16
