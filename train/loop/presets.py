"""Typed training configuration and its presets.

A run's config = a preset, then explicit command-line overrides. The dataclass defaults ARE the
`default` preset (the recipe of the shipped weights); every other preset lists only what it changes.
The resolved config is printed by `--dry-run` and written to the run folder as config.json; a resumed
run takes it from its snapshot through `TrainConfig.from_dict`, which also reads snapshots written
before the config was nested (flat names) and warns about fields that no longer exist.

Command-line flags and preset entries use the short names of `FLAT_NAMES` (`--batch 8`, `--feat-res 160`,
`--disc classic`); in code the fields are nested: `cfg.optimiser.batch`, `cfg.discriminator.feat_res`.
"""

from __future__ import annotations

import dataclasses
import warnings
from dataclasses import dataclass, field

from train.loop.data import default_train_zips


@dataclass
class GeneratorSettings:
    arch: str = "stylegan2"  # "stylegan2" or "dcgan" (the baseline; 64 px, its own D, BCE loss)
    resolution: int = 256  # training (= generator output) side in pixels
    z_dim: int = 512  # StyleGAN2: GeneratorConfig fields (see birdanim/models/stylegan2.py)
    w_dim: int = 512
    channel_base: int = 2048
    channel_max: int = 256
    channel_min: int = 16
    rgb_init_gain: float = 0.1  # StyleGAN2 G: scale the toRGB weights at init (training only; the architecture is
    # unchanged). The skip architecture sums one toRGB output per resolution, so at gain 1 ~70% of the initial pixels
    # are outside [-1, 1] (saturated colours a real photo never has); 0.1 brings the init output std to ~0.2.
    dcgan_ngf: int = 64  # DCGAN generator width


@dataclass
class DiscriminatorSettings:
    kind: str = "projected"  # "projected" (frozen EfficientNet-Lite0 features) or "classic" (residual D + R1)
    channel_base: int = 4096  # classic D width (DiscriminatorConfig.channel_base)
    channel_max: int = 256
    # The projected D's fields below are ignored by the classic D.
    feat_res: int = 128  # images resized to this side for the feature network
    ccm_channels: int = 32  # random CCM width of the finest scale (x2 per scale)
    head_channels: int = 64  # base width of the trainable patch heads
    mbstd: int = 4  # minibatch-stddev group size in each head (0: off): lets a head see a batch of look-alikes
    end_res: int = 8  # heads downsample to this side, then a 4x4 conv: (end_res - 3)^2 logits per head
    # (8: 5x5 local verdicts per scale, as in the Projected GAN paper; 4: one global verdict per scale)
    separable: bool = True  # depthwise-separable head convs (a weaker D; the paper's default with StyleGAN2)
    equal_heads: bool = True  # each scale's head weighs the same in the losses, not each patch logit (at
    # feat_res 128 the deepest, most semantic head has 1 patch logit of 76)
    dcgan_ndf: int = 64  # DCGAN discriminator width


@dataclass
class AugmentSettings:
    kind: str = "diffaug"  # "ada" (adaptive p), "fixed" (p always), "diffaug" (DiffAugment colour + translation +
    # cutout, each with probability p, as the Projected GAN uses them) or "none"
    p: float = 1.0  # initial (ada) or constant (fixed, diffaug) augmentation probability
    ada_kimg: float = 1.0  # ada: p can move 0 -> 1 in this many thousand images (NVlabs: 500 of 25000 kimg; ours
    # are a few hundred kimg, and 5 was too slow to catch a saturating D)
    ada_interval: int = 4  # ada: D steps between p updates


@dataclass
class OptimiserSettings:
    loss: str = "hinge"  # "hinge" (projected D) or "logistic" (non-saturating; classic D, DCGAN)
    batch: int = 64  # images per step over all processes (the Projected GAN batch; ~9 GB at 256 px)
    glr: float = 0.002  # Adam learning rates (equalised LR makes 2e-3 right for StyleGAN2)
    dlr: float = 0.002
    beta1: float = 0.0
    beta2: float = 0.99
    r1_interval: int = 16  # classic D: lazy R1 every this many D steps (0: no R1); weight 0.0002 * res^2 / batch
    ema_kimg: float = 10.0  # G_ema half-life in thousands of images (0: G_ema = G)
    mixing: float = 0.9  # style-mixing probability per batch
    d_warmup_kimg: float = 1.0  # a run whose G starts from trained weights (--init-from) first trains only D for
    # this many thousand images, G and G_ema frozen: a fresh D's first verdicts are noise, and G would follow them
    # away from where it was. 0: off


@dataclass
class TrainConfig:
    preset: str = "default"
    generator: GeneratorSettings = field(default_factory=GeneratorSettings)
    discriminator: DiscriminatorSettings = field(default_factory=DiscriminatorSettings)
    augment: AugmentSettings = field(default_factory=AugmentSettings)
    optimiser: OptimiserSettings = field(default_factory=OptimiserSettings)
    # --- length, bookkeeping (how a run is kept, not what it learns) ---
    kimg: float = 1000.0  # train until this many thousand images seen (in total, across resumes)
    snap_minutes: float = 10.0  # snapshot at least this often (wall clock)
    snap_kimg: float = 0.0  # ... and every this many kimg (0: time only)
    keep_snapshots: int = 2  # full resumable snapshots kept (the newest and its predecessor)
    export_gema: bool = True  # also keep G_ema of every snapshot (fp16) under gema/ for metric curves
    log_seconds: float = 60.0  # JSONL log line at most this often
    grid_size: int = 32  # fixed seeds 0..n-1 in the sample grid
    seed: int = 0
    threads: int = 2  # torch intra-op threads per process
    data: list[str] = field(default_factory=lambda: [str(p) for p in default_train_zips()])
    max_images: int = 0  # use only the first n images (0: all); for quick experiments

    def __post_init__(self):
        checks = {
            "arch": ("stylegan2", "dcgan"),
            "d": ("projected", "classic"),
            "loss": ("hinge", "logistic"),
            "aug": ("ada", "fixed", "diffaug", "none"),
        }
        for name, allowed in checks.items():
            value = get(self, name)
            if value not in allowed:
                raise ValueError(f"{name} must be one of {allowed}, got {value!r} ({FLAT_NAMES[name]})")
        res = self.generator.resolution
        if res < 8 or res & (res - 1):
            raise ValueError(f"resolution must be a power of two >= 8, got {res}")
        if self.optimiser.batch < 1:
            raise ValueError("batch must be >= 1")
        if self.discriminator.equal_heads and (self.discriminator.kind != "projected" or self.generator.arch != "stylegan2"):
            raise ValueError("d_equal_heads needs the projected discriminator (the classic D has one logit per image)")

    @property
    def r1_gamma(self) -> float:
        """R1 weight of the classic D: the StyleGAN2-ADA heuristic."""
        return 0.0002 * self.generator.resolution**2 / self.optimiser.batch

    def flat(self) -> dict:
        """{short name: value}: the names of the command line, presets and records (resumes.jsonl, meta.json)."""
        return {name: get(self, name) for name in FLAT_NAMES}

    @classmethod
    def from_dict(cls, saved: dict, overrides: dict | None = None) -> TrainConfig:
        """A config as saved by any version: nested (config.json, state.json now) or flat (before the nesting),
        under `overrides` (short or dotted names). Fields that no longer exist are ignored with a warning
        (RETIRED says why each went); a value that is not a field at all is an error only in `overrides`."""
        flat, ignored = {}, {}
        for key, value in saved.items():
            if key in SECTIONS and isinstance(value, dict):
                for sub, v in value.items():
                    name = _SHORT.get(f"{key}.{sub}")
                    if name is None:
                        ignored[f"{key}.{sub}"] = v
                    else:
                        flat[name] = v
            elif key in FLAT_NAMES or key == "preset":
                flat[key] = value
            else:
                ignored[key] = value
        if ignored:
            why = "; ".join(f"{k}={v!r} ({RETIRED.get(k, 'unknown field')})" for k, v in ignored.items())
            warnings.warn(f"saved training config: fields ignored: {why}", stacklevel=2)
        preset = flat.pop("preset", "default")
        if preset not in PRESETS:
            warnings.warn(f"saved training config: preset {preset!r} no longer exists; its values are all in the "
                          "saved config, the name is kept as a label", stacklevel=2)
        return build(preset, {**flat, **(overrides or {})})


SECTIONS = ("generator", "discriminator", "augment", "optimiser")

# short name (flag, preset entry, name before the nesting) -> where it lives now
FLAT_NAMES: dict[str, str] = {
    **{n: f"generator.{n}" for n in ("arch", "resolution", "z_dim", "w_dim", "channel_base", "channel_max", "channel_min",
                                     "rgb_init_gain", "dcgan_ngf")},
    "d": "discriminator.kind", "d_channel_base": "discriminator.channel_base", "d_channel_max": "discriminator.channel_max",
    "feat_res": "discriminator.feat_res", "ccm_channels": "discriminator.ccm_channels",
    "head_channels": "discriminator.head_channels", "d_mbstd": "discriminator.mbstd", "d_end_res": "discriminator.end_res",
    "d_separable": "discriminator.separable", "d_equal_heads": "discriminator.equal_heads",
    "dcgan_ndf": "discriminator.dcgan_ndf",
    "aug": "augment.kind", "aug_p": "augment.p", "ada_kimg": "augment.ada_kimg", "ada_interval": "augment.ada_interval",
    **{n: f"optimiser.{n}" for n in ("loss", "batch", "glr", "dlr", "beta1", "beta2", "r1_interval", "ema_kimg", "mixing",
                                     "d_warmup_kimg")},
    **{n: n for n in ("kimg", "snap_minutes", "snap_kimg", "keep_snapshots", "export_gema", "log_seconds", "grid_size",
                      "seed", "threads", "data", "max_images")},
}
_SHORT = {path: name for name, path in FLAT_NAMES.items()}

# Fields removed from the config, and what the code does now (a snapshot that has them loads with a warning).
RETIRED = {
    "fstat_weight": "the feature-statistics G loss: no run kept it; now off",
    "mapping_layers": "no run changed it; GeneratorConfig's 2",
    "r1_gamma": "no run set it; the heuristic 0.0002 * res^2 / batch",
    "ema_rampup": "no run changed it; 0.05 (train.loop.train.EMA_RAMPUP)",
    "ada_target": "no run changed it; 0.6 (AdaController)",
    "xflip": "no run changed it; dataset images are always mirrored at random",
}

# Config fields that say how a run is kept, not what it learns (left out of the recipe a model card gives).
BOOKKEEPING = {"data", "threads", "snap_minutes", "snap_kimg", "log_seconds", "keep_snapshots", "export_gema", "grid_size", "kimg"}

PRESETS: dict[str, dict] = {
    # The recipe of the shipped weights (the defaults above): a projected D after the Projected GAN authors'
    # StyleGAN2 recipe (DiffAugment at p = 1, heads ending at 8x8, separable head convs, equal D and G lr), each
    # head weighed alike, batch 64 with a G EMA half-life of 10 kimg, toRGB init gain 0.1, minibatch-stddev in the
    # heads. Why each: docs/training-log.md and weights/README.md.
    "default": {},
    # The same at 128 px (4x fewer G pixels at the last block, ~1.6x the images per CPU-hour here, and D sees every
    # pixel the G draws); grow the result into 256 px with --init-from.
    "fast128": {"resolution": 128},
    # The original project's D: residual, logistic loss, lazy R1, ADA, batch 8 (the bare recipe before the projected D).
    "classic": {"d": "classic", "loss": "logistic", "rgb_init_gain": 1.0, "aug": "ada", "aug_p": 0.0, "batch": 8,
                "ema_kimg": 2.5, "d_warmup_kimg": 0.0, "d_equal_heads": False},
    # DCGAN baseline (Radford et al.): 64 px, BCE, Adam 2e-4 (0.5, 0.999), no mixing, no EMA, no augmentation.
    "dcgan": {
        "arch": "dcgan", "resolution": 64, "z_dim": 100, "d": "classic", "loss": "logistic", "batch": 64,
        "glr": 0.0002, "dlr": 0.0002, "beta1": 0.5, "beta2": 0.999, "r1_interval": 0, "ema_kimg": 0.0,
        "mixing": 0.0, "aug": "none", "aug_p": 0.0, "rgb_init_gain": 1.0, "d_warmup_kimg": 0.0, "d_equal_heads": False,
    },
    # Tests and smoke runs: 32 px, tiny widths, a few steps; a plain projected D (4x4 heads: the 32 px features
    # are too small for 8x8 ones) with ADA.
    "tiny": {
        "resolution": 32, "z_dim": 32, "w_dim": 32, "channel_base": 256, "channel_max": 64, "channel_min": 8,
        "rgb_init_gain": 1.0, "d_channel_base": 256, "d_channel_max": 64, "feat_res": 32, "ccm_channels": 8,
        "head_channels": 8, "d_mbstd": 0, "d_end_res": 4, "d_separable": False, "d_equal_heads": False,
        "aug": "ada", "aug_p": 0.2, "ada_kimg": 0.1, "batch": 4, "ema_kimg": 0.01, "d_warmup_kimg": 0.0,
        "kimg": 0.016, "grid_size": 4, "snap_minutes": 0.0, "snap_kimg": 0.008, "log_seconds": 0.0, "export_gema": False,
    },
}


def get(cfg: TrainConfig, name: str):
    """The value of a short or dotted name."""
    obj = cfg
    for part in FLAT_NAMES.get(name, name).split("."):
        obj = getattr(obj, part)
    return obj


def build(preset: str, values: dict) -> TrainConfig:
    """A TrainConfig with `values` (short or dotted names) over the dataclass defaults."""
    nested: dict[str, dict] = {s: {} for s in SECTIONS}
    top = {"preset": preset}
    bad = []
    for name, value in values.items():
        path = FLAT_NAMES.get(name, name)
        section, _, sub = path.partition(".")
        if sub and section in SECTIONS and sub in _fields(section):
            nested[section][sub] = value
        elif not sub and path in _fields(None):
            top[path] = value
        else:
            bad.append(name)
    if bad:
        raise ValueError(f"unknown config fields {sorted(bad)}")
    return TrainConfig(**top, **{s: _section_class(s)(**nested[s]) for s in SECTIONS})


def _section_class(section: str) -> type:
    return TrainConfig.__dataclass_fields__[section].default_factory


def _fields(section: str | None) -> set[str]:
    if section is None:
        return {f.name for f in dataclasses.fields(TrainConfig)} - set(SECTIONS) - {"preset"}
    return {f.name for f in dataclasses.fields(_section_class(section))}


def make_config(preset: str, overrides: dict | None = None) -> TrainConfig:
    """The preset's config under `overrides` (short names as on the command line, or dotted ones)."""
    if preset not in PRESETS:
        raise ValueError(f"unknown preset {preset!r}; choose from {sorted(PRESETS)}")
    return build(preset, {**PRESETS[preset], **(overrides or {})})


def flatten(saved: dict) -> dict:
    """A saved config (nested or flat) as {short name: value}, without defaults filled in or warnings."""
    out = {}
    for key, value in saved.items():
        if key in SECTIONS and isinstance(value, dict):
            out.update({_SHORT[f"{key}.{k}"]: v for k, v in value.items() if f"{key}.{k}" in _SHORT})
        elif key in FLAT_NAMES:
            out[key] = value
    return out


def field_type(name: str) -> str:
    """The annotation of a short name's field ("int", "float", "bool", "str", "list[str]")."""
    section, _, sub = FLAT_NAMES[name].partition(".")
    cls = _section_class(section) if sub else TrainConfig
    return str({f.name: f.type for f in dataclasses.fields(cls)}[sub or section])
