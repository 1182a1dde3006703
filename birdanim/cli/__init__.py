"""The `birdanim` command line: a thin dispatcher.

Each user command lives in its own module `birdanim/cli/<name>.py` defining
`HELP` (one line), `EXAMPLES` (runnable examples shown by --help), `add_arguments(parser)` and
`run(args) -> int`. The model makers' commands (prepare, train, metrics, export) forward to the
scripts in the repository's `train/` folder, which exist in a source checkout only.
"""

from __future__ import annotations

import argparse
import importlib
import pkgutil
import runpy
import sys

from birdanim.paths import REPO_ROOT


TRAIN_DIR = REPO_ROOT / "train"
TRAIN_SCRIPTS = {  # command -> (script in train/, one-line help)
    "prepare": ("prepare_data.py", "prepare a training dataset: detect, crop, dedupe, split (model makers)"),
    "train": ("train.py", "train a generator (model makers)"),
    "metrics": ("evaluate.py", "compute FD / KID / FID of a generator (model makers)"),
    "export": ("export.py", "export G_ema of a training snapshot for weights/ (model makers)"),
}


def _user_commands() -> dict:
    mods = {}
    for info in pkgutil.iter_modules(__path__):
        if not info.name.startswith("_"):
            mods[info.name.replace("_", "-")] = f"{__name__}.{info.name}"
    return mods


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    user = _user_commands()
    train = {k: v for k, v in TRAIN_SCRIPTS.items() if (TRAIN_DIR / v[0]).is_file()}
    if argv and argv[0] in train:  # forward everything after the name to the script
        script = TRAIN_DIR / train[argv[0]][0]
        sys.argv = [f"birdanim {argv[0]}", *argv[1:]]
        sys.path.insert(0, str(TRAIN_DIR.parent))
        runpy.run_path(str(script), run_name="__main__")
        return 0

    parser = argparse.ArgumentParser(prog="birdanim", description="Animate a still photo of a bird into a video of it flying.")
    parser.add_argument("--version", action="version", version=f"birdanim {birdanim_version()}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    modules = {}
    for name, modname in sorted(user.items()):
        mod = importlib.import_module(modname)
        p = sub.add_parser(
            name,
            help=mod.HELP,
            description=mod.HELP,
            epilog="examples:\n" + mod.EXAMPLES.rstrip(),
            formatter_class=argparse.RawDescriptionHelpFormatter,
        )
        mod.add_arguments(p)
        modules[name] = mod
    for name, (_, helptext) in sorted(train.items()):
        sub.add_parser(name, help=helptext + f"; see `birdanim {name} --help`", add_help=False)
    args = parser.parse_args(argv)
    if args.command is None:
        parser.print_help()
        return 0
    return int(modules[args.command].run(args) or 0)


def birdanim_version() -> str:
    from birdanim import __version__

    return __version__


if __name__ == "__main__":
    sys.exit(main())
