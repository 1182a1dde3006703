"""kill -9 at random moments of a real training process never corrupts the latest snapshot, and
`--resume latest` continues from it."""

import io
import os
import random
import signal
import subprocess
import sys
import time
import zipfile
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from train.loop import snapshot as S

REPO = Path(__file__).resolve().parents[1]


def _zip(path: Path, n: int = 16):
    rng = np.random.RandomState(0)
    with zipfile.ZipFile(path, "w") as z:
        for i in range(n):
            buf = io.BytesIO()
            Image.fromarray(rng.randint(0, 256, (32, 32, 3), dtype=np.uint8)).save(buf, "PNG")
            z.writestr(f"{i:03d}.png", buf.getvalue())


def _start(outdir: Path, data: Path, env) -> subprocess.Popen:
    cmd = [sys.executable, "-m", "train.loop.train", "--preset", "tiny", "--disc", "classic", "--loss", "logistic",
           "--data", str(data), "--outdir", str(outdir), "--resume", "latest", "--kimg", "10", "--snap-kimg", "0.004",
           "--no-progress", "--threads", "1"]
    return subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, cwd=REPO)


@pytest.mark.slow
def test_kill_9_never_corrupts_latest(tmp_path):
    data = tmp_path / "data.zip"
    _zip(data)
    env = {**os.environ, "BIRDANIM_CACHE": str(tmp_path / "cache")}
    outdir = tmp_path / "runs"
    rnd = random.Random(0)
    seen = []
    for attempt in range(3):
        proc = _start(outdir, data, env)
        deadline = time.time() + 120
        # Wait until this process has written at least one new snapshot, then kill it at a random moment.
        while time.time() < deadline:
            runs = list(outdir.glob("00000-*"))
            if runs and (runs[0] / S.LATEST).is_file():
                n = S.load_snapshot(S.snapshot_of_run(runs[0]))[1]["images_seen"]
                if n > (seen[-1] if seen else 0):
                    break
            if proc.poll() is not None:
                pytest.fail(f"training exited early: {proc.stderr.read().decode()[-2000:]}")
            time.sleep(0.2)
        else:
            proc.kill()
            pytest.fail("no snapshot within 120 s")
        time.sleep(rnd.uniform(0.0, 1.5))  # somewhere in a step or in a snapshot write
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        run = outdir / "00000-tiny"
        snap = S.snapshot_of_run(run)
        tensors, state = S.load_snapshot(snap)  # loads: not corrupted
        assert state["images_seen"] >= (seen[-1] if seen else 4)
        assert any(k.startswith("G_ema.") for k in tensors)
        seen.append(state["images_seen"])
    assert len(list(outdir.iterdir())) == 1  # every restart resumed the same run
    assert seen == sorted(seen)
