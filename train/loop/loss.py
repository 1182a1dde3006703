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


def feature_stats_loss(fake_feats: list[torch.Tensor], real_feats: list[torch.Tensor]) -> torch.Tensor:
    """Batch-statistics matching in the projected D's frozen feature maps (feature matching, Salimans et
    al. 2016, per position rather than pooled): for every scale, each element of the flattened map
    [N, C*H*W] has a mean and a standard deviation over the batch; the loss is the squared difference
    of both between fakes and reals, divided by the reals' mean variance at that scale, averaged over
    scales. A generator that draws one layout for every z has a small spread where the photos have a
    large one (the bird's place, size and pose differ from photo to photo): the std term pushes the
    fakes apart, which the patch heads do not ask for. `real_feats` are targets (no gradient)."""
    terms = []
    for f, r in zip(fake_feats, real_feats):
        f, r = f.flatten(1).float(), r.detach().flatten(1).float()
        scale = r.var(0).mean() + 1e-8
        d_mean = (f.mean(0) - r.mean(0)).square().mean()
        d_std = (f.std(0) - r.std(0)).square().mean()
        terms.append((d_mean + d_std) / scale)
    return torch.stack(terms).mean()


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
