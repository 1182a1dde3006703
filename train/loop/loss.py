"""GAN losses and regularisers (pure functions of logits and modules).

Logits are [N, P] (P = 1 for the classic D, all patch logits for the projected D).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

LOSSES = ("logistic", "hinge")


def _mean(x: torch.Tensor, weights: torch.Tensor | None) -> torch.Tensor:
    """Mean over [N, P]; with `weights` [P] (mean 1), a weighted mean over the patch logits."""
    return x.mean() if weights is None else (x * weights.to(x.dtype)).mean()


def d_loss(real_logits: torch.Tensor, fake_logits: torch.Tensor, kind: str, weights: torch.Tensor | None = None) -> torch.Tensor:
    """Discriminator loss: logistic = softplus(-D(x)) + softplus(D(G(z))) (StyleGAN2); hinge (Projected GAN).
    `weights`: per patch logit (the projected D's patch_weights), or None for all alike."""
    if kind == "logistic":
        return _mean(F.softplus(-real_logits), weights) + _mean(F.softplus(fake_logits), weights)
    if kind == "hinge":
        return _mean(F.relu(1 - real_logits), weights) + _mean(F.relu(1 + fake_logits), weights)
    raise ValueError(f"loss must be one of {LOSSES}, got {kind!r}")


def g_loss(fake_logits: torch.Tensor, kind: str, weights: torch.Tensor | None = None) -> torch.Tensor:
    """Generator loss: non-saturating softplus(-D(G(z))) for logistic, -D(G(z)) for hinge."""
    if kind == "logistic":
        return _mean(F.softplus(-fake_logits), weights)
    if kind == "hinge":
        return -_mean(fake_logits, weights)
    raise ValueError(f"loss must be one of {LOSSES}, got {kind!r}")


def r1_penalty(real_img: torch.Tensor, real_logits: torch.Tensor) -> torch.Tensor:
    """[N] squared norm of dD(x)/dx on reals (Mescheder et al. 2018); `real_img` must require grad."""
    (grad,) = torch.autograd.grad(real_logits.sum(), real_img, create_graph=True)
    return grad.square().sum(dim=[1, 2, 3])


def mapping_with_mixing(G, z: torch.Tensor, mixing_prob: float, generator: torch.Generator | None, update_w_avg: bool):
    """ws for training with style-mixing regularisation: with probability `mixing_prob` (per batch),
    rows [cutoff:] of ws come from a second z, cutoff ~ U{1, num_ws - 1}."""
    ws = G.mapping(z, update_w_avg=update_w_avg)
    if mixing_prob > 0 and torch.rand([], generator=generator).item() < mixing_prob:
        cutoff = int(torch.randint(1, ws.shape[1], [], generator=generator))
        z2 = torch.randn(z.shape, generator=generator).to(z.device)
        ws = torch.cat([ws[:, :cutoff], G.mapping(z2)[:, cutoff:]], dim=1)
    return ws
