"""A straightforward re-implementation of *our* generator's synthesis, written the NVlabs way.

Same parameters, same maths, but each sample's 3x3 weights are modulated and demodulated
explicitly and the batch runs as one grouped convolution (groups = N), in contiguous NCHW, eagerly,
as stylegan2-ada-pytorch's `modulated_conv2d(fused_modconv=True)` does, and upsamples the NVlabs
way too: zero-stuffing followed by a depthwise 4x4 FIR filter ([1, 3, 3, 1] outer product, as
`upfirdn2d`), with edge-replicating padding so that the result equals bilinear upsampling exactly.
Bias, noise and activation are separate passes (NVlabs' reference `bias_act`). It is the yardstick of
`bench_render.py` and the equivalence check of the fast implementation in the tests.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

from birdanim.models.stylegan2 import Generator


def _modconv(x, weight, styles, demodulate: bool, padding: int):
    n, c, h, w = x.shape
    wts = weight[None] * styles[:, None, :, None, None]  # [N, out, in, k, k]
    if demodulate:
        wts = wts * (wts.square().sum(dim=[2, 3, 4], keepdim=True) + 1e-8).rsqrt()
    out_ch = weight.shape[0]
    x = F.conv2d(x.reshape(1, n * c, h, w), wts.reshape(n * out_ch, c, *weight.shape[2:]), padding=padding, groups=n)
    return x.reshape(n, out_ch, *x.shape[2:])


_FIR = torch.outer(torch.tensor([1.0, 3.0, 3.0, 1.0]), torch.tensor([1.0, 3.0, 3.0, 1.0]))
_FIR = _FIR / _FIR.sum() * 4  # gain 4 = 2x2 for upsampling


def upsample2x_fir(x: torch.Tensor) -> torch.Tensor:
    """Zero-stuff 2x, then a depthwise [1, 3, 3, 1] FIR (upfirdn2d's pattern); equals bilinear 2x."""
    n, c, h, w = x.shape
    xp = F.pad(x, (1, 1, 1, 1), mode="replicate")
    z = x.new_zeros(n, c, (h + 2) * 2, (w + 2) * 2)
    z[:, :, ::2, ::2] = xp
    y = F.conv2d(z, _FIR.to(x).expand(c, 1, 4, 4), groups=c)
    return y[:, :, : 2 * h, : 2 * w]


class ReferenceSynthesis:
    def __init__(self, G: Generator):
        self.blocks = G.synthesis.blocks
        self.num_ws = G.num_ws

    def _layer(self, layer, x, w, noise_mode):
        styles = layer.affine(w)
        if layer.up:
            x = upsample2x_fir(x)
        x = _modconv(x.contiguous(), layer.weight * layer.weight_gain, styles, True, 1)
        if noise_mode == "const":
            x = x + layer.noise_const * layer.noise_strength
        x = F.leaky_relu(x + layer.bias[:, None, None], 0.2) * math.sqrt(2)
        if layer.conv_clamp is not None:
            x = x.clamp(-layer.conv_clamp, layer.conv_clamp)
        return x

    def _torgb(self, t, x, w):
        y = _modconv(x, t.weight, t.affine(w) * t.weight_gain, False, 0) + t.bias[:, None, None]
        return y if t.conv_clamp is None else y.clamp(-t.conv_clamp, t.conv_clamp)

    def __call__(self, ws: torch.Tensor, noise_mode: str = "const") -> torch.Tensor:
        assert noise_mode in ("const", "none"), "the reference renders deterministic noise only"
        x = img = None
        i = 0
        for b in self.blocks:
            bws = ws[:, i : i + b.num_conv + 1]
            if b.is_first:
                x = b.const.detach().contiguous()[None].repeat(ws.shape[0], 1, 1, 1)
                x = self._layer(b.conv1, x, bws[:, 0], noise_mode)
            else:
                x = self._layer(b.conv0, x, bws[:, 0], noise_mode)
                x = self._layer(b.conv1, x, bws[:, 1], noise_mode)
            y = self._torgb(b.torgb, x, bws[:, b.num_conv])
            img = y if img is None else upsample2x_fir(img) + y
            i += b.num_conv
        return img
