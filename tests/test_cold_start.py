"""`birdanim --help` must answer without importing torch (issue 27: cold start)."""

from __future__ import annotations

import subprocess
import sys

HEAVY = ("torch", "numpy", "cv2", "gradio", "ultralytics", "openvino", "scipy", "matplotlib")


def _modules_after(code: str) -> set[str]:
    out = subprocess.run([sys.executable, "-c", code + "\nimport sys\nprint(' '.join(sorted(sys.modules)))"],
                         capture_output=True, text=True, check=True, timeout=120)
    return set(out.stdout.split())


def test_help_imports_no_heavy_module():
    code = ("import contextlib, io\nimport birdanim.cli\n"
            "with contextlib.redirect_stdout(io.StringIO()):\n"
            "    try:\n        birdanim.cli.main(['--help'])\n    except SystemExit:\n        pass")
    loaded = _modules_after(code)
    assert not [m for m in HEAVY if m in loaded], f"`birdanim --help` imported {[m for m in HEAVY if m in loaded]}"


def test_each_command_help_imports_no_torch():
    for cmd in ("animate", "generate", "mix", "project"):
        code = ("import contextlib, io\nimport birdanim.cli\n"
                "with contextlib.redirect_stdout(io.StringIO()):\n"
                f"    try:\n        birdanim.cli.main(['{cmd}', '--help'])\n    except SystemExit:\n        pass")
        assert "torch" not in _modules_after(code), f"`birdanim {cmd} --help` imported torch"


def test_import_birdanim_is_light_and_lazy_names_work():
    assert "torch" not in _modules_after("import birdanim")
    out = subprocess.run([sys.executable, "-c", "import birdanim; print(birdanim.load_generator.__module__)"],
                         capture_output=True, text=True, check=True, timeout=120)
    assert out.stdout.strip() == "birdanim.checkpoint"
