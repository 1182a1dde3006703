"""The nested TrainConfig: its defaults are the `default` preset, and snapshots written before the nesting
(flat names, retired fields and presets) still load, with a warning.

The fixtures are configs written by the code before the change (`git show b8ee340:train/loop/presets.py`):
train_config_before_nesting.json is the `default` preset branched at G and D lr 4e-3 on one thread (as runs
J and N were), train_config_pg_fstat_before_nesting.json the retired `pg` preset with the retired
feature-statistics loss on.
"""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import pytest

from train.loop.presets import FLAT_NAMES, PRESETS, RETIRED, TrainConfig, flatten, make_config
from train.loop.train import config_changes, snapshot_config

FIXTURES = Path(__file__).resolve().parent / "fixtures"


def _old(name: str) -> dict:
    return json.loads((FIXTURES / name).read_text())


def test_defaults_are_the_default_preset():
    assert PRESETS["default"] == {}
    assert make_config("default") == TrainConfig()
    assert "proj-v1" not in PRESETS and "pg" not in PRESETS


def test_a_config_written_before_the_nesting_loads_with_a_warning():
    old = _old("train_config_before_nesting.json")
    with pytest.warns(UserWarning, match="fields ignored") as rec:
        cfg = TrainConfig.from_dict(old)
    message = " ".join(str(w.message) for w in rec)
    for name in ("fstat_weight", "mapping_layers", "r1_gamma", "ema_rampup", "ada_target", "xflip"):
        assert name in message and name in old and name in RETIRED
    assert cfg.preset == "default"
    assert cfg.optimiser.glr == cfg.optimiser.dlr == 0.004 and cfg.threads == 1
    assert cfg.discriminator.kind == "projected" and cfg.discriminator.mbstd == 4 and cfg.augment.kind == "diffaug"
    # every value the old config has under a name that still exists comes through unchanged
    assert cfg.flat() == {k: v for k, v in old.items() if k in FLAT_NAMES}
    # and it is the default preset with the branch's changes
    assert cfg == make_config("default", {"glr": 0.004, "dlr": 0.004, "threads": 1, "data": old["data"]})


def test_a_retired_preset_keeps_its_name_and_values():
    old = _old("train_config_pg_fstat_before_nesting.json")
    with pytest.warns(UserWarning) as rec:
        cfg = TrainConfig.from_dict(old)
    messages = [str(w.message) for w in rec]
    assert any("preset 'pg' no longer exists" in m for m in messages)
    assert any("fstat_weight=0.5" in m for m in messages)
    assert cfg.preset == "pg" and cfg.optimiser.batch == 16 and cfg.optimiser.ema_kimg == 2.5


def test_nested_round_trip_has_no_warning(recwarn):
    cfg = make_config("tiny", {"glr": 0.001})
    again = TrainConfig.from_dict(json.loads(json.dumps(dataclasses.asdict(cfg))))
    assert again == cfg and not [w for w in recwarn if issubclass(w.category, UserWarning)]


def test_unknown_override_is_an_error():
    with pytest.raises(ValueError, match="unknown config fields"):
        make_config("tiny", {"fstat_weight": 1.0})
    with pytest.raises(ValueError, match="unknown config fields"):
        TrainConfig.from_dict(dataclasses.asdict(TrainConfig()), {"no_such_field": 1})


def test_short_and_dotted_names_are_the_same_field():
    assert make_config("tiny", {"d_mbstd": 2}) == make_config("tiny", {"discriminator.mbstd": 2})


def test_resume_from_an_old_snapshot_records_only_what_the_command_line_changed(tmp_path):
    old = _old("train_config_before_nesting.json")
    snap = tmp_path / "snapshot-000000008"
    snap.mkdir()
    (snap / "state.json").write_text(json.dumps({"config": old}))
    with pytest.warns(UserWarning, match="fields ignored"):
        cfg = snapshot_config(snap, {"glr": 0.001})
    assert cfg.optimiser.glr == 0.001 and cfg.optimiser.dlr == 0.004
    assert config_changes(old, cfg) == {"glr": [0.004, 0.001]}
    assert flatten(dataclasses.asdict(cfg)) == cfg.flat()
