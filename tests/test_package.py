import subprocess
import sys

HEAVY = ("gradio", "ultralytics", "moviepy", "imageio_ffmpeg", "cv2", "openvino", "matplotlib")


def test_import_birdanim_is_light():
    code = "import sys, birdanim, birdanim.models, birdanim.checkpoint; print(sorted(m for m in %r if m in sys.modules))" % (HEAVY,)
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.strip()
    assert out == "[]", f"import birdanim pulled in {out}"


def test_cli_help_lists_commands():
    out = subprocess.run([sys.executable, "-m", "birdanim.cli", "--help"], capture_output=True, text=True, check=True).stdout
    assert "usage: birdanim" in out
    from birdanim.cli import _user_commands

    for name in _user_commands():
        assert name in out
