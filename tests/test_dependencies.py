"""Every module that birdanim/ and app.py import is the standard library, birdanim itself, or declared in
pyproject.toml; requirements*.txt agree with pyproject.toml. Reads files only: installs nothing."""

from __future__ import annotations

import ast
import re
import sys
import tomllib
from pathlib import Path

from packaging.requirements import Requirement

REPO = Path(__file__).resolve().parent.parent

# import name -> distribution name, where they differ beyond case and '_' vs '-'
DISTRIBUTION = {
    "cv2": "opencv-python",
    "PIL": "pillow",
    "yaml": "pyyaml",
    "sklearn": "scikit-learn",
    "skimage": "scikit-image",
    "onnxruntime": "onnxruntime",
}


def norm(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def imported_modules(files) -> dict[str, set[str]]:
    """Top-level module name -> files importing it (absolute imports anywhere in the file, lazy ones too)."""
    found: dict[str, set[str]] = {}
    for f in files:
        for node in ast.walk(ast.parse(f.read_text(), str(f))):
            if isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                names = [node.module]
            else:
                continue
            for n in names:
                found.setdefault(n.split(".")[0], set()).add(str(f.relative_to(REPO)))
    return found


def pyproject() -> dict:
    return tomllib.loads((REPO / "pyproject.toml").read_text())["project"]


def requirements(path: Path) -> dict[str, str]:
    out = {}
    for line in path.read_text().splitlines():
        line = line.split("#")[0].strip()
        if not line:
            continue
        if line.startswith("-r "):
            out.update(requirements(path.parent / line[3:].strip()))
            continue
        r = Requirement(line)
        out[norm(r.name)] = str(r.specifier)
    return out


def declared(reqs) -> dict[str, str]:
    return {norm(r.name): str(r.specifier) for r in map(Requirement, reqs)}


def _undeclared(files, allowed: dict[str, str]) -> list[str]:
    bad = []
    for mod, where in sorted(imported_modules(files).items()):
        if mod in sys.stdlib_module_names or mod in ("birdanim", "__future__"):
            continue
        if norm(DISTRIBUTION.get(mod, mod)) not in allowed:
            bad.append(f"{mod} (imported by {', '.join(sorted(where))}; distribution {DISTRIBUTION.get(mod, mod)})")
    return bad


def test_package_imports_are_declared_dependencies():
    files = sorted((REPO / "birdanim").rglob("*.py"))
    bad = _undeclared(files, declared(pyproject()["dependencies"]))
    assert not bad, "birdanim/ imports modules that pyproject.toml's dependencies do not declare:\n  " + "\n  ".join(bad)


def test_app_imports_are_declared():
    deps = declared(pyproject()["dependencies"]) | declared(pyproject()["optional-dependencies"]["app"])
    bad = _undeclared([REPO / "app.py"], deps)
    assert not bad, "app.py imports modules that pyproject.toml (dependencies + app extra) does not declare:\n  " + "\n  ".join(bad)


def test_requirements_files_agree_with_pyproject():
    p = pyproject()
    runtime = declared(p["dependencies"]) | declared(p["optional-dependencies"]["app"])
    assert requirements(REPO / "requirements.txt") == runtime
    assert requirements(REPO / "requirements-dev.txt") == runtime | declared(p["optional-dependencies"]["dev"])


def test_the_walk_sees_lazy_imports():
    """The walk finds imports inside functions too (birdanim imports its heavy modules lazily)."""
    found = imported_modules([REPO / "birdanim" / "stages" / "detect.py"])
    assert "ultralytics" in found
