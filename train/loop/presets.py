"""Typed training configuration and its presets.

A run's config = a preset, then explicit command-line overrides (each field below is a flag:
`--batch 8`, `--feat-res 160`...). The resolved config is printed by `--dry-run` and written to the
run folder as config.json; a resumed run takes it from its snapshot.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field

from train.loop.data import default_train_zips


@dataclass
class TrainConfig:
    preset: str = "default"
    # --- networks ---
    arch: str = "stylegan2"  # "stylegan2" or "dcgan" (the baseline; 64 px, its own D, BCE loss)
    resolution: int = 256  # training (= generator output) side in pixels
    z_dim: int = 512  # StyleGAN2: GeneratorConfig fields (see birdanim/models/stylegan2.py)
    w_dim: int = 512
    mapping_layers: int = 2
    channel_base: int = 2048
    channel_max: int = 256
    channel_min: int = 16
    rgb_init_gain: float = 1.0  # StyleGAN2 G: scale the toRGB weights at init (training only; the architecture is
    # unchanged). The skip architecture sums one toRGB output per resolution, so at init ~70% of the pixels are
    # outside [-1, 1] (saturated colours a real photo never has). 0.1 brings the init output std to ~0.2.
    d: str = "projected"  # "projected" (frozen EfficientNet-Lite0 features) or "classic" (residual D + R1)
    d_channel_base: int = 4096  # classic D width (DiscriminatorConfig.channel_base)
    d_channel_max: int = 256
    feat_res: int = 128  # projected D: images resized to this side for the feature network
    ccm_channels: int = 32  # projected D: random CCM width of the finest scale (x2 per scale)
    head_channels: int = 64  # projected D: base width of the trainable patch heads
    d_mbstd: int = 0  # projected D: minibatch-stddev group size in each head (0: off, as in the paper)
    d_end_res: int = 4  # projected D: heads downsample to this side, then a 4x4 conv: (d_end_res - 3)^2 logits
    # per head (the paper's 8: 5x5 local verdicts per scale; 4: one global verdict per scale)
    d_separable: bool = False  # projected D: depthwise-separable head convs (the paper's default with StyleGAN2)
    d_equal_heads: bool = False  # projected D: each scale's head weighs the same in the losses, not each patch
    # logit (at feat_res 128 the deepest, most semantic head has 1 patch logit of 76; in the paper 1/4 of them)
    dcgan_ngf: int = 64  # DCGAN widths
    dcgan_ndf: int = 64
    # --- optimisation ---
    loss: str = "hinge"  # "hinge" (projected D) or "logistic" (non-saturating; classic D, DCGAN)
    batch: int = 8  # images per step over all processes (CPU: img/s barely depends on it; small = more updates)
    glr: float = 0.002  # Adam learning rates (equalised LR makes 2e-3 right for StyleGAN2)
    dlr: float = 0.002
    beta1: float = 0.0
    beta2: float = 0.99
    r1_gamma: float = -1.0  # R1 weight for the classic D; < 0: heuristic 0.0002 * res^2 / batch
    r1_interval: int = 16  # lazy R1: every this many D steps (0: no R1)
    ema_kimg: float = 2.5  # G_ema half-life in thousands of images (0: G_ema = G)
    ema_rampup: float = 0.05  # half-life <= this x images seen, so early G_ema is not stuck at init (0: off)
    mixing: float = 0.9  # style-mixing probability per batch
    d_warmup_kimg: float = 0.0  # a run whose G starts from trained weights (--init-from) first trains only D for
    # this many thousand images, G and G_ema frozen: a fresh D's first verdicts are noise, and G at lr 2e-3 follows
    # them away from where it was (00000-pg lost ~25 FD in its first 3 kimg from the shipped weights). 0: off
    fstat_weight: float = 0.0  # projected D: weight of the G loss term that matches the batch mean and spread of
    # the frozen feature maps between fakes and reals (train/loop/loss.py feature_stats_loss; against one shared layout)
    # --- augmentation (ADA) ---
    aug: str = "ada"  # "ada" (adaptive p), "fixed" (p = aug_p always), "diffaug" (DiffAugment colour +
    # translation + cutout, each with probability aug_p, as the Projected GAN uses them) or "none"
    aug_p: float = 0.0  # initial (ada) or constant (fixed) augmentation probability
    ada_target: float = 0.6  # target of r_t = E[sign(D(real))]
    ada_kimg: float = 1.0  # p can move 0 -> 1 in this many thousand images (NVlabs: 500 of 25000 kimg; ours are ~100
    # kimg, and at 5 the shipped run kept r_t = 1.0 (D saturated) for 1.5 kimg while p crawled to 0.28)
    ada_interval: int = 4  # D steps between p updates
    xflip: bool = True  # mirror dataset images at random (doubles the data)
    # --- length, bookkeeping ---
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
            if getattr(self, name) not in allowed:
                raise ValueError(f"{name} must be one of {allowed}, got {getattr(self, name)!r}")
        if self.resolution < 8 or self.resolution & (self.resolution - 1):
            raise ValueError(f"resolution must be a power of two >= 8, got {self.resolution}")
        if self.batch < 1:
            raise ValueError("batch must be >= 1")
        if self.fstat_weight > 0 and (self.d != "projected" or self.arch != "stylegan2"):
            raise ValueError("fstat_weight needs the projected discriminator (its feature maps are what it matches)")
        if self.d_equal_heads and (self.d != "projected" or self.arch != "stylegan2"):
            raise ValueError("d_equal_heads needs the projected discriminator (the classic D has one logit per image)")

    @property
    def gamma(self) -> float:
        return self.r1_gamma if self.r1_gamma >= 0 else 0.0002 * self.resolution**2 / self.batch


_PROJECTED_FIXES = {"rgb_init_gain": 0.1, "dlr": 0.0002, "aug": "fixed", "aug_p": 0.5, "d_mbstd": 4}
_PG = {**_PROJECTED_FIXES, "aug": "diffaug", "aug_p": 1.0, "d_end_res": 8, "d_separable": True, "dlr": 0.002, "batch": 16,
       "d_warmup_kimg": 1.0}
# `default` (see its comment below); fast128 is the same at 128 px.
_DEFAULT = {**_PG, "d_equal_heads": True, "batch": 64, "ema_kimg": 10.0}

PRESETS: dict[str, dict] = {
    # The recipe of the shipped 256 px generator until 2026-12-01 (GeneratorConfig() defaults, projected D). With the bare
    # defaults (toRGB init gain 1, dlr 2e-3, ADA) the first 256 px run saturated D from 0.3 kimg on
    # (D margin ~25, G loss ~11, saturated-colour blobs). In 0.4-0.6 kimg A/B runs (CPU, weak signal):
    # toRGB gain 0.1 puts the initial images in range; dlr 2e-4 cuts the D margin from 15-20 to ~6
    # (G loss ~3); r_t stayed ~1.0 in every variant, so ADA's controller would only drive p to 1 (with
    # leak-prone +-pi rotations and hue): a fixed p = 0.5 instead, as the Projected GAN's always-on DiffAugment.
    # Run 00001 with these fixes: FD 142 -> 135 over 4-6 kimg, but at 9-11 kimg every seed drew the same
    # layout (only colours varied) while D's margin stayed ~9: nothing in the projected D sees a batch
    # of look-alikes. d_mbstd = 4 gives each head a minibatch-stddev channel, as StyleGAN's D has.
    "proj-v1": dict(_PROJECTED_FIXES),
    # The recipe of the shipped weights since 2026-12-01 (run 00000-pg, started from proj-v1's weights;
    # named "pg" until then): closer to the Projected GAN authors' StyleGAN2 recipe. DiffAugment at p = 1
    # instead of ADA ops at 0.5, heads ending at 8x8 (5x5 patch verdicts per scale instead of one),
    # depthwise-separable head convs (weaker D), and D lr = G lr = 2e-3 as in their code; batch 16.
    # It broke proj-v1's collapse within a few kimg (recall 0 -> 0.01-0.04 at n = 500) and after 24 kimg
    # beat it on every metric (n = 2000: FD 77.9 -> 71.5, KID 0.111 -> 0.080, bird-detect 0.37 -> 0.46).
    # Since 2026-12-04 also each of the four D heads weighed alike (d_equal_heads): of four runs from the same weights
    # that day, the one with it gave the only clearly better snapshot (n = 2000 FD 71.5 -> 64.4, now shipped) while the
    # plain recipe drifted from n = 500 FD 81 to 95 over 1.1 CPU-hours (weights/README.md, "Where training stands").
    # Since 2026-12-05 also batch 64 (the Projected GAN batch; ~9 GB at 256 px) with a G EMA half-life of 10 kimg: over
    # its first 80 kimg from the shipped weights run G matched batch 16 (same images per CPU-hour and FD, steadier
    # bird-detect); kept going, it gave three weights of 2026-12-05 (n = 2000 FD 64.4 -> 63.6 at 94 kimg -> 57.1 at 141
    # -> 46.9 at 212). From its 159 kimg snapshot, G and D lr 4e-3 (run J) fell faster than 2e-3 (43.7 at 195 kimg against
    # 47.4 at 199; 42.3 at 216, the fourth weights) but narrowed (recall 0.09 -> 0.04), and 8e-3 from J's 200 kimg
    # was worse (48.1, recall 0.01); after J turned (45.7 at 232), back at 2e-3 from there gave 41.9 at 248 and 43.5
    # at 255 (run M), then drifted up (45.0 at 273); 4e-3 again from M's 258 kimg snapshot gave 41.8 at 283 (run N, the
    # fifth weights), 1e-3 from N's 273 kimg snapshot 41.0 at 298 (run O): after 216 kimg a lower rate after a higher
    # one gives the best snapshots, by ~1 FD. Late-stage runs only, so the preset keeps 2e-3 until a from-scratch
    # comparison.
    "default": _DEFAULT,
    "pg": {**_PG, "d_equal_heads": True},  # default until 2026-12-05 (batch 16), under the name runs 00000-pg and 00002-pg had
    # The same at 128 px (4x fewer G pixels at the last block, ~1.6x the images per CPU-hour here, and
    # D sees every pixel the G draws); grow the result into 256 px with --init-from.
    "fast128": {**_DEFAULT, "resolution": 128, "feat_res": 128},
    # The original project's D: residual, logistic loss, lazy R1.
    "classic": {"d": "classic", "loss": "logistic"},
    # DCGAN baseline (Radford et al.): 64 px, BCE, Adam 2e-4 (0.5, 0.999), no mixing, no EMA, no ADA.
    "dcgan": {
        "arch": "dcgan", "resolution": 64, "z_dim": 100, "d": "classic", "loss": "logistic", "batch": 64,
        "glr": 0.0002, "dlr": 0.0002, "beta1": 0.5, "beta2": 0.999, "r1_interval": 0, "ema_kimg": 0.0,
        "mixing": 0.0, "aug": "none",
    },
    # Tests and smoke runs: 32 px, tiny widths, a few steps.
    "tiny": {
        "resolution": 32, "z_dim": 32, "w_dim": 32, "channel_base": 256, "channel_max": 64, "channel_min": 8,
        "d_channel_base": 256, "d_channel_max": 64, "feat_res": 32, "ccm_channels": 8, "head_channels": 8,
        "batch": 4, "kimg": 0.016, "ema_kimg": 0.01, "grid_size": 4, "snap_minutes": 0.0, "snap_kimg": 0.008,
        "log_seconds": 0.0, "export_gema": False, "ada_kimg": 0.1, "aug_p": 0.2,
    },
}


# Config fields that say how a run is kept, not what it learns (left out of the recipe a model card gives).
BOOKKEEPING = {"data", "threads", "snap_minutes", "snap_kimg", "log_seconds", "keep_snapshots", "export_gema", "grid_size", "kimg"}


def make_config(preset: str, overrides: dict | None = None) -> TrainConfig:
    if preset not in PRESETS:
        raise ValueError(f"unknown preset {preset!r}; choose from {sorted(PRESETS)}")
    fields = {f.name for f in dataclasses.fields(TrainConfig)}
    bad = set(overrides or {}) - fields
    if bad:
        raise ValueError(f"unknown config fields {sorted(bad)}")
    return TrainConfig(**{"preset": preset, **PRESETS[preset], **(overrides or {})})
