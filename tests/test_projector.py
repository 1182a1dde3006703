"""The projector lowers its loss on a tiny generator, deterministically, and PTI tunes a copy of G."""

import pytest
import torch
from _anim_tiny import one_thread, tiny_generator  # noqa: F401 (autouse fixture)

from birdanim.engines.gan.projector import PRESETS, ProjectorConfig, lr_at, project, projection, resolve_config


@pytest.fixture(scope="module")
def G():
    return tiny_generator()


@pytest.fixture(scope="module")
def features():
    from birdanim.models.features import load_efficientnet_lite

    return load_efficientnet_lite(0)


@pytest.fixture(scope="module")
def target(G):
    with torch.no_grad():  # a bird the generator can make: the projection should approach it
        return G(torch.randn(1, G.z_dim, generator=torch.Generator().manual_seed(42)))


def test_lr_schedule():
    lrs = [lr_at(s, 100, 0.1, 0.05, 0.25) for s in range(100)]
    assert lrs[0] == 0 and lrs[10] == pytest.approx(0.1) and lrs[99] < 0.001
    assert all(a <= b + 1e-12 for a, b in zip(lrs[:5], lrs[1:6]))  # warm-up rises


def test_projection_lowers_loss(G, target, features):
    cfg = ProjectorConfig(w_steps=10, wplus_steps=10, lr=0.1, loss_res=32)
    res = projection(G, target, config=cfg, features=features, seed=0)
    assert res.ws.shape == (1, G.num_ws, G.w_dim) and not res.ws.requires_grad
    assert len(res.losses) == 20 and res.G_tuned is None
    assert sum(res.losses[-3:]) / 3 < 0.7 * sum(res.losses[:3]) / 3
    with torch.no_grad():
        start = (G.synthesis(G.mapping.w_avg.reshape(1, 1, -1).repeat(1, G.num_ws, 1)) - target).abs().mean()
        end = (G.synthesis(res.ws) - target).abs().mean()
    assert end < start
    short = ProjectorConfig(w_steps=3, wplus_steps=2, loss_res=32)
    a, b = (project(G, target, config=short, features=features, seed=0) for _ in range(2))
    assert torch.allclose(a, b, atol=1e-5)  # deterministic for a seed


def test_init_ws_and_pti(G, target, features):
    init = G.mapping.w_avg.reshape(1, 1, -1).repeat(1, G.num_ws, 1)
    cfg = ProjectorConfig(w_steps=0, wplus_steps=5, pti_steps=15, pti_lr=3e-3, loss_res=32)
    res = projection(G, target, config=cfg, init_ws=init, features=features)
    assert res.G_tuned is not None and res.G_tuned is not G
    assert not any(p.requires_grad for p in G.parameters())  # the original G is untouched
    pti = res.losses[5:]
    assert pti[-1] < pti[0]
    with torch.no_grad():
        before = (G.synthesis(res.ws) - target).square().mean()
        after = (res.G_tuned.synthesis(res.ws) - target).square().mean()
    assert after < before


def test_presets_and_errors(G, features):
    assert resolve_config("fast", has_start=False, steps=None).w_steps > 0  # no encoder: search W first
    assert resolve_config("fast", has_start=True, steps=None).w_steps == 0
    assert resolve_config("balanced", True, 20).w_steps + resolve_config("balanced", True, 20).wplus_steps == 20
    assert PRESETS["best"].pti_steps > 0
    with pytest.raises(ValueError, match="quality"):
        resolve_config("ultra", True, None)
    with pytest.raises(ValueError, match="target"):
        project(G, torch.zeros(3, 32, 32), features=features)


def test_partial_synthesis(G, target, features):
    from birdanim.engines.gan.projector import partial_synthesis

    ws = G.mapping(torch.randn(2, G.z_dim, generator=torch.Generator().manual_seed(1)))
    assert partial_synthesis(G, None) is G.synthesis and partial_synthesis(G, 32) is G.synthesis
    with torch.no_grad():
        low = partial_synthesis(G, 16)(ws)
        full = G.synthesis(ws)
    assert low.shape == (2, 3, 16, 16)
    # The 16 px running image is the low-pass skeleton of the final one (the last toRGB adds detail).
    assert torch.nn.functional.avg_pool2d(full, 2).sub(low).abs().mean() < full.abs().mean()
    cfg = ProjectorConfig(w_steps=5, wplus_steps=5, lr=0.1, loss_res=32, synth_res=16)
    res = projection(G, target, config=cfg, features=features)
    assert res.losses[-1] < res.losses[0]


class _FixedEncoder(torch.nn.Module):
    """Predicts the same ws for any image (stands in for a trained or a broken encoder)."""

    input_res = 32

    def __init__(self, ws):
        super().__init__()
        self.ws = ws

    def forward(self, img):
        return self.ws


def test_encoder_start_is_kept_only_when_it_helps(G, features):
    z = torch.randn(1, G.z_dim, generator=torch.Generator().manual_seed(5))
    with torch.no_grad():
        true_ws = G.mapping(z)
        target = G.synthesis(true_ws)
    cfg_steps = dict(quality="fast", steps=2, features=features)
    good = projection(G, target, encoder=_FixedEncoder(true_ws), **cfg_steps)
    assert good.start == "encoder" and len(good.losses) == 2 + PRESETS["fast"].pti_steps  # with a start: no W stage
    bad = projection(G, target, encoder=_FixedEncoder(true_ws + 50.0), **cfg_steps)
    assert bad.start == "w_avg"
    assert projection(G, target, init_ws=true_ws, **cfg_steps).start == "init_ws"


@pytest.mark.parametrize("which,min_res", [("affine", 0), ("fine", 16)])
def test_pti_tunes_only_the_chosen_parameters(G, target, features, which, min_res):
    from birdanim.engines.gan.projector import pti_parameters

    init = G.mapping.w_avg.reshape(1, 1, -1).repeat(1, G.num_ws, 1)
    cfg = ProjectorConfig(w_steps=0, wplus_steps=2, pti_steps=6, pti_lr=3e-3, loss_res=32, pti_loss_res=32,
                          pti_params=which, pti_min_res=min_res)
    res = projection(G, target, config=cfg, init_ws=init, features=features)
    chosen = {id(p) for p in pti_parameters(res.G_tuned.synthesis, which, min_res)}
    assert 0 < len(chosen) < len(list(res.G_tuned.synthesis.parameters()))
    for (name, before), after in zip(G.synthesis.named_parameters(), res.G_tuned.synthesis.parameters()):
        if id(after) not in chosen:  # everything else stays the shipped generator's
            assert torch.equal(before, after), name
    assert any(not torch.equal(b, a) for b, a in zip(G.synthesis.parameters(), res.G_tuned.synthesis.parameters()))
    with pytest.raises(ValueError):
        pti_parameters(G.synthesis, "everything")



def test_presets_fit_the_budget_shape():
    # the default preset tunes the generator (pivotal tuning) but stays short; best does the most of everything
    fast, balanced, best = (PRESETS[k] for k in ("fast", "balanced", "best"))
    assert fast.pti_steps > 0 and fast.pti_steps <= balanced.pti_steps <= best.pti_steps
    assert fast.wplus_steps + fast.w_steps <= balanced.wplus_steps + balanced.w_steps <= best.wplus_steps + best.w_steps
