"""Project a photo into the generator's W+ space: a pure function (no I/O but loading Lite0 when no `features` are passed).

    ws = project(G, target)                         # target [1, 3, H, W] in [-1, 1] -> [1, num_ws, w_dim]
    res = projection(G, target, quality="best")     # Projection(ws, G_tuned, losses)

Stages (each optional, sizes set by the quality preset):
1. W: optimise one w shared by all layers, from the encoder's prediction (its layer mean) or w_avg.
   Noise is added to w early on (a ramp that decays to zero) so the search does not stall.
2. W+: optimise every layer's w separately, from stage 1's result (or the encoder's ws).
3. PTI (pivotal tuning, every preset): fine-tune a *copy* of the synthesis network (by default only
   its style affines) for a few steps so it reproduces this bird more closely at the found ws. The
   caller renders with the tuned copy; the poses mixed in later are rendered by it too.

The noise maps stay the generator's constant ones. NVlabs' projector also optimises them; here that was
tried and removed: on 6 test photos it gave PSNR 16.94 vs 16.95 dB for 14% more time (this generator's
noise strengths are small, so the maps carry little of the image).

Loss = perceptual distance in frozen EfficientNet-Lite0 features (birdanim.models.features) at `loss_res`
+ `pixel_weight` x mean squared pixel error at `loss_res`
+ `wplus_reg` x spread of the W+ rows around their mean (keeps the ws near W, so style mixing with
  poses behaves like mixing two generated birds).
Learning rate: linear warm-up over the first 5% of steps, cosine ramp-down over the last 25%.
The perceptual network is any object with forward_features() and distance() (birdanim.models.features:
EfficientNet-Lite0 by default, VGG LPIPS when its weights are available).
"""

from __future__ import annotations

import copy
import math
from collections.abc import Callable
from dataclasses import dataclass, field, replace

import torch
import torch.nn.functional as F


@dataclass(frozen=True)
class ProjectorConfig:
    w_steps: int = 0  # stage 1 steps (one shared w)
    wplus_steps: int = 30  # stage 2 steps (per-layer ws)
    pti_steps: int = 0  # stage 3 steps fine-tuning a copy of G (0: no PTI)
    lr: float = 0.05  # Adam learning rate for w / ws (W space units, w_std ~ 1..20 for trained G)
    pti_lr: float = 3e-4  # Adam learning rate of the generator copy during PTI
    loss_res: int = 128  # side in pixels at which the losses are computed (the crop is resized to it)
    pixel_weight: float = 1.0  # weight of the MSE pixel loss (images in [-1, 1])
    wplus_reg: float = 0.01  # weight of the penalty on W+ rows drifting apart (per element, squared)
    w_noise: float = 0.05  # initial w noise as a fraction of w_std; decays to 0 at 75% of stage 1
    warmup: float = 0.05  # fraction of steps for the linear lr warm-up
    rampdown: float = 0.25  # fraction of steps for the cosine lr ramp-down
    # W / W+ stages render only the synthesis blocks up to this side (None: all). StyleGAN2's skip
    # architecture sums an RGB image over resolutions, so the image at 128 px is a preview of the final
    # one; skipping the 256 px block halves the cost of a step. The ws rows only the skipped blocks
    # read (the finest colour detail) keep their starting values (encoder or stage-1 w).
    synth_res: int | None = None
    # Pivotal tuning: which parameters of the generator copy move, and the loss side it is tuned at.
    # "all": the whole synthesis network; "affine": only the per-layer style affines (the A's that map w to
    # modulation) and the toRGB layers; "fine": every parameter of the blocks at sides >= pti_min_res.
    pti_params: str = "all"
    pti_min_res: int = 0  # smallest block side tuned when pti_params == "fine"
    pti_loss_res: int | None = None  # side of the PTI losses (None: loss_res)
    # PTI renders only the blocks up to this side (None: all), like synth_res: about half the cost of a
    # step at 128; the skipped 256 px block is not tuned (it adds the finest detail on top of the rest).
    pti_synth_res: int | None = None


# Pivotal tuning of the style affines only ("affine": the A's mapping each layer's w to its modulation,
# and toRGB) at lr 3e-3. Measured after the fast W+ fit on 6 benchmark photos (benchmarks/sweep_gan.py,
# 2026-12-07; PSNR / Lite0 distance of the crop, Lite2 identity of its bird to the photo's):
#   no PTI 10.8 dB / 1.52 / 0.433;  affine 10 steps 13.8 dB / 1.39 / 0.511;  affine 20 steps 14.7 dB / 1.28 / 0.502;
#   all parameters 10 steps 14.5 dB / 1.28 / 0.476 (and its frames were detected as a bird less often:
#   tuning the convolutions breaks the poses);  affine 20 at lr 1e-2 15.5 dB / 1.17 / 0.576 (but bird-detect
#   0.50);  affine 20 on the 128 px blocks only (pti_synth_res 128) 9.3 dB: the 256 px block must be tuned too.
# A step of affine PTI costs about 0.8x a W+ step of the fast preset (CPU time, 1 thread).
PRESETS = {
    # fast: the whole job in seconds on a 2-core CPU; relies on the encoder for a good start.
    "fast": ProjectorConfig(w_steps=0, wplus_steps=12, lr=0.03, loss_res=128, synth_res=128,
                            pti_steps=10, pti_lr=3e-3, pti_params="affine", pti_loss_res=128),
    "balanced": ProjectorConfig(w_steps=40, wplus_steps=60, loss_res=128,
                                pti_steps=20, pti_lr=3e-3, pti_params="affine", pti_loss_res=128),
    "best": ProjectorConfig(w_steps=100, wplus_steps=150, loss_res=192,
                            pti_steps=40, pti_lr=3e-3, pti_params="affine", pti_loss_res=192),
}
NO_ENCODER_W_STEPS = {"fast": 10}  # without an encoder, "fast" first searches W from w_avg


def partial_synthesis(G, max_res: int | None):
    """synthesis(ws, noise_mode) that stops after the block at max_res and returns that block's RGB
    image (the running sum of the toRGB outputs); the full G.synthesis when max_res is None or >= G's."""
    if max_res is None or max_res >= G.img_resolution:
        return G.synthesis
    blocks = [b for b in G.synthesis.blocks if b.resolution <= max_res]

    def synth(ws: torch.Tensor, noise_mode: str = "const") -> torch.Tensor:
        x = img = None
        i = 0
        for block in blocks:
            x, img = block(x, img, ws[:, i : i + block.num_conv + 1], noise_mode)
            i += block.num_conv
        return img

    return synth


@dataclass
class Projection:
    ws: torch.Tensor  # [1, num_ws, w_dim], detached
    G_tuned: torch.nn.Module | None = None  # the copy of G to render with: PTI's fine-tuned weights (None
    # without PTI: render with G itself)
    losses: list[float] = field(default_factory=list)  # total loss at every step, all stages
    start: str = "w_avg"  # where the search started: "init_ws", "encoder" or "w_avg"


ProgressFn = Callable[[float, float], None]  # (fraction done 0..1, current loss)


def lr_at(step: int, total: int, base: float, warmup: float, rampdown: float) -> float:
    """Warm-up then flat then cosine ramp-down; step in [0, total)."""
    t = step / max(1, total)
    up = min(1.0, t / warmup) if warmup > 0 else 1.0
    down = 0.5 - 0.5 * math.cos(math.pi * min(1.0, (1.0 - t) / rampdown)) if rampdown > 0 else 1.0
    return base * up * down


class Loss:
    """Perceptual + pixel loss against one target, with the target's features computed once."""

    def __init__(self, target: torch.Tensor, features, loss_res: int, pixel_weight: float):
        # target: [1, 3, H, W] in [-1, 1]; features: a birdanim.models.features network (or None: pixels only);
        # loss_res: side in pixels for both losses; pixel_weight: weight of the MSE term.
        self.features, self.res, self.pixel_weight = features, loss_res, pixel_weight
        self.target = self.resize(target.float())
        with torch.no_grad():
            self.target_feats = features.forward_features(self.target) if features is not None else None

    def resize(self, img: torch.Tensor) -> torch.Tensor:
        if img.shape[-1] == self.res and img.shape[-2] == self.res:
            return img
        return F.interpolate(img, size=(self.res, self.res), mode="bilinear", antialias=True, align_corners=False)

    def __call__(self, img: torch.Tensor) -> torch.Tensor:
        x = self.resize(img)
        loss = self.pixel_weight * (x - self.target).square().mean()
        if self.features is not None:
            loss = loss + self.features.distance(self.features.forward_features(x), self.target_feats).mean()
        return loss


@torch.no_grad()
def w_stats(G, n: int = 2000, seed: int = 0) -> tuple[torch.Tensor, float]:
    """w_avg [w_dim] and w_std (root of the summed per-dimension variance) from n mapped samples."""
    device = next(G.parameters()).device
    z = torch.randn(n, G.z_dim, generator=torch.Generator().manual_seed(seed)).to(device)
    w = G.mapping(z)[:, 0]
    return w.mean(0), float(w.var(0).sum().sqrt())


def _optimise_ws(synth, ws_init, loss_fn, steps, cfg: ProjectorConfig, w_std, num_ws, gen, log, progress, shared: bool):
    """Adam on w ([1, 1, w_dim], broadcast to all layers) when `shared`, else on ws ([1, num_ws, w_dim])."""
    var = ws_init.detach().clone().requires_grad_(True)
    opt = torch.optim.Adam([{"params": [var], "lr": cfg.lr, "base": cfg.lr}], betas=(0.9, 0.999))
    for step in range(steps):
        for g in opt.param_groups:
            g["lr"] = lr_at(step, steps, g["base"], cfg.warmup, cfg.rampdown)
        ws = var.expand(-1, num_ws, -1) if shared else var
        if shared and cfg.w_noise > 0:  # decaying exploration noise (NVlabs-style ramp, squared decay)
            scale = w_std * cfg.w_noise * max(0.0, 1.0 - step / (0.75 * steps)) ** 2
            ws = ws + torch.randn(var.shape, generator=gen).to(var.device) * scale
        loss = loss_fn(synth(ws, noise_mode="const"))
        if not shared and cfg.wplus_reg > 0:
            loss = loss + cfg.wplus_reg * (ws - ws.mean(1, keepdim=True)).square().mean()
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        log(loss.item(), progress)
    return var.detach()


PTI_PARAMS = ("all", "affine", "fine")


def pti_parameters(synthesis, which: str = "all", min_res: int = 0) -> list[torch.nn.Parameter]:
    """The synthesis parameters pivotal tuning moves (see ProjectorConfig.pti_params)."""
    if which == "all":
        return list(synthesis.parameters())
    if which == "affine":
        return [p for n, p in synthesis.named_parameters() if ".affine." in n or ".torgb." in n]
    if which == "fine":
        return [p for b in synthesis.blocks if b.resolution >= min_res for p in b.parameters()]
    raise ValueError(f"pti_params must be one of {PTI_PARAMS}, got {which!r}")


def _pivotal_tuning(G, ws, loss_fn, cfg: ProjectorConfig, log, progress) -> torch.nn.Module:
    """Fine-tune a copy of G's synthesis network (the parameters cfg.pti_params names) so that it
    reproduces the target at ws."""
    G_tuned = copy.deepcopy(G).train().requires_grad_(False)
    params = pti_parameters(G_tuned.synthesis, cfg.pti_params, cfg.pti_min_res)
    for prm in params:
        prm.requires_grad_(True)
    opt = torch.optim.Adam(params, lr=cfg.pti_lr)
    synth = partial_synthesis(G_tuned, cfg.pti_synth_res)
    for step in range(cfg.pti_steps):
        for g in opt.param_groups:
            g["lr"] = lr_at(step, cfg.pti_steps, cfg.pti_lr, cfg.warmup, cfg.rampdown)
        loss = loss_fn(synth(ws, noise_mode="const"))
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        log(loss.item(), progress)
    return G_tuned.eval().requires_grad_(False)


def resolve_config(quality: str, has_start: bool, steps: int | None) -> ProjectorConfig:
    if quality not in PRESETS:
        raise ValueError(f"quality must be one of {sorted(PRESETS)}, got {quality!r}")
    cfg = PRESETS[quality]
    if not has_start and quality in NO_ENCODER_W_STEPS:
        cfg = replace(cfg, w_steps=NO_ENCODER_W_STEPS[quality])
    if steps is not None and steps < 1:
        raise ValueError(f"steps must be >= 1, got {steps}")
    if steps is not None:  # override: total W + W+ steps, split in the preset's proportion
        total = max(1, cfg.w_steps + cfg.wplus_steps)
        w_steps = round(steps * cfg.w_steps / total)
        cfg = replace(cfg, w_steps=w_steps, wplus_steps=steps - w_steps)
    return cfg


def projection(
    G: torch.nn.Module,  # a birdanim generator (mapping + synthesis), frozen
    target: torch.Tensor,  # [1, 3, H, W] in [-1, 1], ideally H = W = G.img_resolution
    *,
    quality: str = "fast",  # "fast" | "balanced" | "best" (see PRESETS)
    init_ws: torch.Tensor | None = None,  # [1, num_ws, w_dim] start (overrides the encoder)
    encoder: torch.nn.Module | None = None,  # birdanim.engines.gan.encoder.WEncoder: predicts the start ws
    steps: int | None = None,  # override the preset's W + W+ step count
    seed: int = 0,  # seeds the w-noise ramp: same inputs + seed -> same ws
    progress: ProgressFn | None = None,
    features: torch.nn.Module | None = None,  # birdanim.models.features network; None loads Lite0 once per call
    config: ProjectorConfig | None = None,  # full control (overrides quality and steps)
) -> Projection:
    """Find ws (and, for "best", a tuned G copy) that make G reproduce `target`."""
    device = next(G.parameters()).device
    if target.dim() != 4 or target.shape[:2] != (1, 3):
        raise ValueError(f"target must be [1, 3, H, W] in [-1, 1], got {tuple(target.shape)}")
    target = target.to(device).float()
    if features is None:
        from birdanim.models.features import load_efficientnet_lite

        features = load_efficientnet_lite(0, device)
    w_avg, w_std = w_stats(G)
    avg_ws = w_avg.reshape(1, 1, -1).repeat(1, G.num_ws, 1)
    cfg = config or resolve_config(quality, True, steps)
    loss_fn = Loss(target, features, min(cfg.loss_res, G.img_resolution), cfg.pixel_weight)
    start = "init_ws" if init_ws is not None else "w_avg"
    synth = partial_synthesis(G, cfg.synth_res)
    if init_ws is None and encoder is not None:
        with torch.no_grad():
            enc_ws = encoder(F.interpolate(target, size=(encoder.input_res,) * 2, mode="bilinear", antialias=True))
            # Guard against an encoder that does not fit these weights or this photo: keep its start
            # only if it beats the average bird (two forward passes, a fraction of one step's cost).
            if float(loss_fn(synth(enc_ws, noise_mode="const"))) < float(loss_fn(synth(avg_ws, noise_mode="const"))):
                init_ws, start = enc_ws, "encoder"
    if config is None:
        cfg = resolve_config(quality, init_ws is not None, steps)
    gen = torch.Generator().manual_seed(seed)
    losses: list[float] = []
    total = max(1, cfg.w_steps + cfg.wplus_steps + cfg.pti_steps)

    def log(loss: float, cb: ProgressFn | None) -> None:
        losses.append(loss)
        if cb is not None:
            cb(len(losses) / total, loss)

    ws = init_ws.to(device).float() if init_ws is not None else avg_ws
    if cfg.w_steps > 0:
        w = _optimise_ws(synth, ws.mean(1, keepdim=True), loss_fn, cfg.w_steps, cfg, w_std, G.num_ws, gen, log, progress, True)
        ws = w.expand(-1, G.num_ws, -1).clone()
    if cfg.wplus_steps > 0:
        ws = _optimise_ws(synth, ws, loss_fn, cfg.wplus_steps, cfg, w_std, G.num_ws, gen, log, progress, False)
    G_tuned = None
    if cfg.pti_steps > 0:
        pti_res = min(cfg.pti_loss_res or cfg.loss_res, G.img_resolution)
        pti_loss = loss_fn if pti_res == loss_fn.res else Loss(target, features, pti_res, cfg.pixel_weight)
        G_tuned = _pivotal_tuning(G, ws, pti_loss, cfg, log, progress)
    return Projection(ws=ws.detach(), G_tuned=G_tuned, losses=losses, start=start)


def project(G, target, **kw) -> torch.Tensor:
    """ws [1, num_ws, w_dim] that make G reproduce target; see `projection` for the options."""
    return projection(G, target, **kw).ws
