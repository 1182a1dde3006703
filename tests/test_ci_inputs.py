"""The conftest helpers: a missing input skips with its reason on a developer's machine and FAILS under
CI=true, so CI cannot go green by skipping every end-to-end test."""

from __future__ import annotations

import pytest

import conftest


@pytest.mark.parametrize("in_ci, outcome", [(False, pytest.skip.Exception), (True, pytest.fail.Exception)])
def test_missing_inputs_skip_or_fail(monkeypatch, tmp_path, in_ci, outcome):
    monkeypatch.setattr(conftest, "IN_CI", in_ci)
    monkeypatch.setattr(conftest, "SHARED", tmp_path / "no_shared")
    monkeypatch.setattr(conftest, "shared_detector", lambda: tmp_path / "no_detector")
    monkeypatch.setattr(conftest, "CHROMIUM", str(tmp_path / "no_chromium"))
    monkeypatch.setattr(conftest.shutil, "which", lambda name: None)
    for check, what in [(lambda: conftest.needs_shared("data", "birds256"), "../shared/data/birds256"),
                        (conftest.needs_detector, "no_detector"), (conftest.needs_chromium, "Chromium")]:
        with pytest.raises(outcome) as e:
            check()
        assert what in str(e.value)
        if in_ci:
            assert "CI=true" in str(e.value)


def test_present_inputs_return_their_path(monkeypatch, tmp_path):
    (tmp_path / "data").mkdir()
    monkeypatch.setattr(conftest, "SHARED", tmp_path)
    assert conftest.needs_shared("data") == tmp_path / "data"
