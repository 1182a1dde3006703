"""The options of one animation: each range and default is defined here once.

The service validates them (`AnimateOptions.checked`), the CLI builds its flags from `FIELDS`, the app
its controls; no other place repeats a range.

    opts = AnimateOptions(mode="rig", frames=120)       # the rest default
    opts = opts.checked(num_ws=14)                        # BadArgument with a sentence if out of range
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

from birdanim.errors import BadArgument

MODES = ("rig", "gan")
QUALITIES = ("fast", "balanced", "best")
SCENES = ("photo", "sky", "crop")
PATHS = ("hover", "cross")
WINGS = ("real", "painted")
MIXINGS = ("offset", "swap")
MAX_STRENGTH = {"swap": 1.0, "offset": 2.0}  # a swap beyond 1 extrapolates past the pose; an offset may exaggerate it


@dataclass(frozen=True)
class Field:
    """How one option is checked and explained (CLI help, app labels)."""

    help: str
    lo: float | None = None  # numeric range, inclusive
    hi: float | None = None
    choices: tuple[str, ...] | None = None
    modes: tuple[str, ...] = MODES  # the engines that read it


FIELDS: dict[str, Field] = {
    "mode": Field("engine: rig (your bird's own pixels, rigged and flapped) or gan (the original style-mixing "
                  "method)", choices=MODES),
    "frames": Field("number of video frames", 2, 600),
    "fps": Field("frames per second of the video", 1, 120),
    "size": Field("output size: pixels on the long side (the GAN's crop mode is fixed at its resolution)", 128, 1024),
    "scene": Field("where the bird flies: photo (its own, the bird's spot filled in), sky, or crop (a square "
                   "around the bird)", choices=SCENES),
    "path": Field("flight path: hover in place or cross the frame", choices=PATHS),
    "beats_per_second": Field("wing-beats per second (rig mode)", 0.5, 8, modes=("rig",)),
    "background_blur": Field("softness of the scene behind the flying bird, as when a camera follows a bird in "
                             "flight: blur in px of a 512 px frame; 0 keeps the photo sharp (rig mode)", 0, 8,
                             modes=("rig",)),
    "wings": Field("a perched bird's spread wings: real (the outline and feathers of a real flying bird's wing, "
                   "in your bird's own colours) or painted (drawn feather by feather in its colours) (rig mode)",
                   choices=WINGS, modes=("rig",)),
    "cycles": Field("passes through the wing-beat poses per video (gan mode)", 1, 60, modes=("gan",)),
    "cutoff": Field("W+ layers below the cutoff come from the wing-beat poses; lower keeps more of your bird "
                    "(gan mode)", 1, None, modes=("gan",)),
    "mixing": Field("how the wing-beat poses reach your bird: offset (its layers below the cutoff are moved by "
                    "each pose's difference from the mean pose: keeps its colours) or swap (they are replaced by the "
                    "pose's: the original method) (gan mode)", choices=MIXINGS, modes=("gan",)),
    "strength": Field("how far the poses move your bird: 1 = the pose's own layers (swap) or the poses' own spread "
                      "(offset, which also accepts up to 2 to exaggerate it) (gan mode)", 0, 1, modes=("gan",)),
    "quality": Field("projection effort: fast, balanced or best (slow; gan mode)", choices=QUALITIES, modes=("gan",)),
    "seed": Field("random seed (projection noise, small variations of the motion, which real wing a perched bird "
                  "borrows)", 0, 2**31 - 1),
}


@dataclass(frozen=True)
class AnimateOptions:
    """One animation's settings; see FIELDS for what each means and its range."""

    mode: str = "rig"
    frames: int = 300
    fps: float = 30.0
    size: int = 512
    scene: str = "photo"
    path: str = "hover"
    beats_per_second: float = 3.0
    background_blur: float = 2.0
    wings: str = "real"
    cycles: int = 1
    cutoff: int = 7
    # swap at cutoff 7: the best identity/flight trade-off measured (offsets keep more of the bird but it
    # does not fly: README, "The GAN mode")
    mixing: str = "swap"
    strength: float = 1.0
    quality: str = "fast"
    seed: int = 0
    gif: bool = False  # also write a GIF beside the MP4
    require_bird: bool = False  # no bird found -> NoBirdError instead of a centred crop

    def replace(self, **changes) -> AnimateOptions:
        unknown = set(changes) - {f.name for f in dataclasses.fields(self)}
        if unknown:
            raise BadArgument(f"unknown option(s): {', '.join(sorted(unknown))}")
        return dataclasses.replace(self, **changes)

    def checked(self, num_ws: int | None = None) -> AnimateOptions:
        """A copy with numbers coerced to their types; BadArgument naming the option when one is out
        of range. num_ws: the generator's W+ rows (bounds the cutoff), None when no generator is loaded."""
        vals = {}
        for f in dataclasses.fields(self):
            v = getattr(self, f.name)
            spec = FIELDS.get(f.name)
            if spec is None:
                vals[f.name] = bool(v)
                continue
            if spec.choices is not None:
                if v not in spec.choices:
                    raise BadArgument(f"{f.name} must be one of {', '.join(spec.choices)}; got {v!r}")
                vals[f.name] = v
                continue
            try:
                num = int(v) if f.type in ("int", int) else float(v)
            except (TypeError, ValueError):
                raise BadArgument(f"{f.name} must be a number; got {v!r}") from None
            hi = spec.hi
            if f.name == "cutoff" and num_ws is not None:
                hi = num_ws - 1
            if f.name == "strength":
                hi = MAX_STRENGTH.get(self.mixing, hi)
            if (spec.lo is not None and num < spec.lo) or (hi is not None and num > hi):
                raise BadArgument(f"{f.name} must be in {_fmt(spec.lo)}..{_fmt(hi)}; got {v}")
            vals[f.name] = num
        return AnimateOptions(**vals)


def _fmt(x) -> str:
    return "" if x is None else (str(int(x)) if float(x).is_integer() else str(x))
