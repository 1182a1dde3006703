"""train/diagnostics/probe_g.py: the generator diagnosis measures what it says on a tiny generator."""

import json

import torch

from birdanim.checkpoint import save_generator
from train.diagnostics.probe_g import main, pairwise_spread, probe, red_share

from tests._anim_tiny import tiny_generator


def test_block_rows_cover_every_ws_row_once_and_numbers_are_finite():
    G = tiny_generator()
    r = probe(G, n=8)
    rows = [tuple(b["rows"]) for b in r["layers"][:-1]]
    assert [b["resolution"] for b in r["layers"][:-1]] == [4, 8, 16, 32]
    assert rows[0][0] == 0 and rows[-1][1] == G.num_ws and all(a[1] == b[0] for a, b in zip(rows, rows[1:]))
    flat = [v for part in ("w_spread", "finest_torgb") for v in r[part].values()]
    flat += [r["samples"][k] for k in ("pixel", "layout")] + list(r["samples"]["red"].values())
    flat += [b[k] for b in r["layers"] for k in ("pixel_change", "layout_change")]
    assert all(torch.isfinite(torch.tensor(v)) for v in flat)
    assert r["samples"]["layout"] > 0 and r["layers"][-1]["pixel_change"] > 0


def test_a_silent_last_torgb_shows_as_no_share_and_its_block_moves_nothing():
    G = tiny_generator()
    with torch.no_grad():
        for block in G.synthesis.blocks[-2:]:  # the 32 px toRGB, and the 16 px one, whose row the 32 px conv0 shares
            block.torgb.weight.zero_()
            block.torgb.bias.zero_()
    r = probe(G, n=8)
    assert r["finest_torgb"]["last_torgb_std"] == 0 and r["finest_torgb"]["image_std"] > 0
    # the last block's rows now reach only its own convs and silenced toRGBs: nothing drawn changes
    assert r["layers"][-2]["resolution"] == 32 and r["layers"][-2]["pixel_change"] == 0
    assert r["layers"][1]["pixel_change"] > 0


def test_pairwise_spread_is_the_mean_difference_over_pairs():
    a, b = torch.full((1, 3, 32, 32), -0.5), torch.full((1, 3, 32, 32), 0.5)
    assert pairwise_spread(torch.cat([a, a])) == {"pixel": 0.0, "layout": 0.0}
    s = pairwise_spread(torch.cat([a, b, b]))  # pairs: a-b twice (x2 orders), b-b once (x2): 4/6 of 1.0
    assert abs(s["pixel"] - 4 / 6) < 1e-6 and abs(s["layout"] - 4 / 6) < 1e-6


def test_command_line_reads_a_weights_folder(tmp_path, capsys):
    save_generator(tiny_generator(), tmp_path / "w")
    assert main([str(tmp_path / "w"), "--n", "8", "--json"]) == 0
    assert len(json.loads(capsys.readouterr().out)["layers"]) == 5
    assert main([str(tmp_path / "nothing"), "--n", "8"]) == 2


def test_red_share_counts_strongly_red_pixels_and_the_images_holding_them():
    grey = torch.zeros(1, 3, 10, 10)
    red = grey.clone()
    red[0, 0, :1, :5] = 1.0  # 5 of 100 pixels: R 255 against G = B 128 (a margin of 127)
    faint = grey.clone()
    faint[0, 0, :1, :5] = 0.5  # R 191: a margin of 63 < 70, not counted
    r = red_share(torch.cat([grey, red, faint, red]))
    assert abs(r["pixel_share"] - 0.1 / 4) < 1e-6  # (0 + 0.05 + 0 + 0.05) / 4
    assert r["image_share"] == 0.5
    assert red_share(grey) == {"pixel_share": 0.0, "image_share": 0.0}
