"""The FD/KID feature path on real photos: `real_features` (train/metrics/evaluate.py) on the first 8
test photos of ../shared/data/birds256 gives stored values, so a change in decoding, resizing or the
feature network (which would shift every FD the model card reports) fails here instead of only being
tried on Gaussian noise."""

from __future__ import annotations

import zipfile

import numpy as np
import pytest
import torch

from conftest import needs_shared

# Measured 2026-12-07 on this machine (torch 2.14.1 CPU, Pillow's JPEG decoder) with 1 and 2 threads:
# the two runs differ by <= 2e-7 relative in the norms and <= 1e-6 absolute per element, i.e. float32
# summation-order noise. RTOL = 1e-4 leaves ~500x that for other CPUs' kernels and BLAS libraries.
NORMS = [9.165337, 10.281962, 9.718668, 11.362872, 10.823335, 10.1385355, 10.007026, 9.693114]
MEAN = 0.14079924
FIRST = [0.4291844, 0.3871611, 0.0, 0.0]  # feature 0..3 of the first photo
RTOL, ATOL = 1e-4, 1e-5


@pytest.mark.slow
def test_real_features_of_real_photos_match_stored_values(tmp_path, monkeypatch):
    import train.metrics.evaluate as E
    from birdanim.models.features import load_efficientnet_lite
    from train.loop.data import zip_members

    src = needs_shared("data", "birds256", "test.zip")
    small = tmp_path / "test8.zip"  # the first 8 photos (sorted names), kept in tmp_path only
    with zipfile.ZipFile(src) as z, zipfile.ZipFile(small, "w") as out:
        for name in zip_members(src)[:8]:
            out.writestr(name, z.read(name))
    monkeypatch.setattr(E, "STATS_DIR", tmp_path / "stats")  # never read the user's cache
    torch.set_num_threads(2)
    net = load_efficientnet_lite(2)

    feats = E.real_features(net, zips=[small])
    assert feats.shape == (8, 1280) and feats.dtype == np.float32 and np.isfinite(feats).all()
    np.testing.assert_allclose(np.linalg.norm(feats, axis=1), NORMS, rtol=RTOL)
    np.testing.assert_allclose(feats.mean(), MEAN, rtol=RTOL)
    np.testing.assert_allclose(feats[0, :4], FIRST, rtol=RTOL, atol=ATOL)
    # Second call: the cached .npz, identical.
    assert len(list((tmp_path / "stats").glob("real-*.npz"))) == 1
    np.testing.assert_array_equal(E.real_features(net, zips=[small]), feats)
