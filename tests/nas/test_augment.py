"""The vendor-recipe image augmentation used in training (nas.data)."""

from __future__ import annotations

import pytest

torch = pytest.importorskip("torch")

from nas.data import Augment, random_affine  # noqa: E402

NONE = Augment(pad=0, degrees=0.0, translate=0.0, shear=0.0)


def _digit(n: int = 4, h: int = 28, w: int = 28) -> torch.Tensor:
    x = -torch.ones(n, 1, h, w)
    x[:, :, 8:20, 12:16] = 127 / 128  # a bar, as a "1"
    return x


def test_identity_when_every_range_is_zero() -> None:
    x = _digit()
    y = random_affine(x, torch.Generator().manual_seed(0), NONE)
    assert torch.allclose(y, x, atol=1e-5)


def test_integer_shift_only_moves_the_image_and_fills_black() -> None:
    x = _digit(16)
    y = random_affine(x, torch.Generator().manual_seed(1), Augment(pad=3, degrees=0, translate=0, shear=0))
    for i in range(len(x)):
        found = False
        for dy in range(-3, 4):
            for dx in range(-3, 4):
                ref = -torch.ones_like(x[i])
                src = x[i][:, max(0, dy):28 + min(0, dy), max(0, dx):28 + min(0, dx)]
                ref[:, max(0, -dy):28 + min(0, -dy), max(0, -dx):28 + min(0, -dx)] = src
                found |= bool(torch.allclose(y[i], ref, atol=1e-5))
        assert found, f"image {i} is not an integer shift of its input"
    assert not torch.allclose(y, x), "16 draws of shifts in [-3, 3] cannot all be zero"


def test_vendor_recipe_is_seeded_keeps_range_and_background() -> None:
    x = _digit(8)
    a = random_affine(x, torch.Generator().manual_seed(5))
    b = random_affine(x, torch.Generator().manual_seed(5))
    c = random_affine(x, torch.Generator().manual_seed(6))
    assert a.shape == x.shape
    assert torch.equal(a, b)
    assert not torch.allclose(a, c)
    assert float(a.min()) >= -1 - 1e-6 and float(a.max()) <= 127 / 128 + 1e-6
    # corners stay black (background), and most of the digit's ink survives the transform
    assert torch.allclose(a[:, :, 0, 0], torch.full((8, 1), -1.0))
    ink = (x > 0).float().sum((1, 2, 3))
    kept = (a > 0).float().sum((1, 2, 3))
    assert bool(((kept > 0.5 * ink) & (kept < 1.5 * ink)).all())


def test_rotation_of_a_non_square_image_keeps_the_ink() -> None:
    x = _digit(6, h=20, w=40)
    y = random_affine(x, torch.Generator().manual_seed(2), Augment(pad=0, degrees=20, translate=0, shear=0))
    ink, kept = float((x > 0).sum()), float((y > 0).sum())
    assert 0.6 * ink < kept < 1.4 * ink


def test_sequences_are_left_alone() -> None:
    x = torch.randn(4, 2, 50)
    assert random_affine(x, torch.Generator().manual_seed(0)) is x
