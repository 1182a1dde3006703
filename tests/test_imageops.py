import numpy as np
import pytest
import torch
from PIL import Image

from birdanim.imageops import make_grid, pil_to_tensor, tensor_to_pil, tensor_to_uint8, uint8_to_float, uint8_to_tensor


def test_uint8_round_trip_is_exact():
    arr = np.random.RandomState(0).randint(0, 256, (2, 5, 7, 3), dtype=np.uint8)
    t = uint8_to_tensor(arr)
    assert t.shape == (2, 3, 5, 7) and t.min() >= -1 and t.max() <= 1
    assert np.array_equal(tensor_to_uint8(t), arr)


def test_range_and_clipping():
    t = torch.tensor([-1.0, 0.0, 1.0, 5.0, -5.0]).view(1, 1, 1, 5).expand(1, 3, 1, 5)
    assert tensor_to_uint8(t)[0, 0, :, 0].tolist() == [0, 128, 255, 255, 0]


def test_pil_conversions_any_mode():
    img = Image.new("RGBA", (9, 4), (10, 20, 30, 255))
    t = pil_to_tensor(img)
    assert t.shape == (1, 3, 4, 9)
    back = tensor_to_pil(t[0])
    assert back.size == (9, 4) and back.getpixel((0, 0)) == (10, 20, 30)
    assert len(tensor_to_pil(t.repeat(3, 1, 1, 1))) == 3
    assert pil_to_tensor(Image.new("L", (3, 3), 200)).shape == (1, 3, 3, 3)


def test_bad_inputs():
    with pytest.raises(ValueError):
        tensor_to_uint8(torch.zeros(1, 4, 2, 2))
    with pytest.raises(ValueError):
        uint8_to_tensor(np.zeros((2, 2, 3), np.float32))


def test_grid():
    imgs = np.zeros((5, 4, 4, 3), np.uint8)
    g = make_grid(imgs, cols=3, pad=1)
    assert g.shape == (2 * 4 + 1, 3 * 4 + 2, 3)


def test_uint8_to_float_matches_the_hwc_converter():
    arr = np.random.RandomState(1).randint(0, 256, (2, 4, 6, 3), dtype=np.uint8)
    nchw = torch.from_numpy(arr).permute(0, 3, 1, 2)
    assert torch.equal(uint8_to_float(nchw), uint8_to_tensor(arr))
    assert uint8_to_float(torch.tensor([0, 255], dtype=torch.uint8)).tolist() == [-1.0, 1.0]
    with pytest.raises(ValueError):
        uint8_to_float(torch.zeros(2))
