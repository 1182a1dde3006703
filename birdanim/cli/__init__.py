"""The `birdanim` command line: a thin dispatcher.

Each user command lives in its own module `birdanim/cli/<name>.py` defining
`HELP` (one line), `EXAMPLES` (runnable examples shown by --help), `add_arguments(parser)` and
`run(args) -> int`. The model makers' commands (prepare, train, metrics, export) call `main(argv)` of
modules in the repository's `train/` package, which exists in a source checkout only (it is not in
the wheel).
"""

from __future__ import annotations

import argparse
import importlib
import importlib.util
import pkgutil
import sys

from birdanim.paths import REPO_ROOT


TRAIN_DIR = REPO_ROOT / "train"
TRAIN_SCRIPTS = {  # command -> (module of the train/ package with a main(argv), one-line help)
    "prepare": ("train.tools.prepare_data", "prepare a training dataset: detect, crop, dedupe, split (model makers)"),
    "train": ("train.loop.train", "train a generator (model makers)"),
    "metrics": ("train.metrics.evaluate", "compute FD / KID / FID of a generator (model makers)"),
    "export": ("train.tools.export", "export G_ema of a training snapshot for weights/ (model makers)"),
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
    if argv and argv[0] in TRAIN_SCRIPTS:  # forward everything after the name to the module's main
        module = TRAIN_SCRIPTS[argv[0]][0]
        if not _train_module_file(module).is_file():
            print(f"error: `birdanim {argv[0]}` needs a source checkout of birdanim: {TRAIN_DIR} is not there "
                  "(the training code is not part of the installed package)", file=sys.stderr)
            return 2
        return int(_import_train_module(module).main(argv[1:]) or 0)

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
    for name, (module, helptext) in sorted(TRAIN_SCRIPTS.items()):
        if not _train_module_file(module).is_file():
            helptext += "; needs a source checkout"
        sub.add_parser(name, help=helptext + f"; see `birdanim {name} --help`", add_help=False)
    args = parser.parse_args(argv)
    if args.command is None:
        parser.print_help()
        return 0
    return int(modules[args.command].run(args) or 0)


def _train_module_file(module: str):
    """The file of a `train.` module in this checkout (it may be absent: installed from a wheel)."""
    return REPO_ROOT.joinpath(*module.split(".")).with_suffix(".py")


def _import_train_module(module: str):
    """Import a module of the checkout's `train/` package. From the repository root it imports as usual;
    from elsewhere (the installed `birdanim` command) the package is registered from its folder first, so
    the working directory does not matter and sys.path stays as it is."""
    if "train" not in sys.modules:
        spec = importlib.util.find_spec("train")
        if spec is None or spec.origin != str(TRAIN_DIR / "__init__.py"):
            spec = importlib.util.spec_from_file_location("train", TRAIN_DIR / "__init__.py", submodule_search_locations=[str(TRAIN_DIR)])
            package = importlib.util.module_from_spec(spec)
            sys.modules["train"] = package
            spec.loader.exec_module(package)
    return importlib.import_module(module)


def birdanim_version() -> str:
    from birdanim import __version__

    return __version__


if __name__ == "__main__":
    sys.exit(main())
