"""The search's accuracy estimates (nas.estimators): the short training's arithmetic."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from nas import load_npz
from nas.estimators import ShortTraining
from search_spaces import get_space


@pytest.fixture(scope="module")
def digits(tmp_path_factory):
    from sklearn.datasets import load_digits

    d = load_digits()
    path = Path(tmp_path_factory.mktemp("d")) / "digits.npz"
    np.savez(path, x=(d.images[:300] * 16).clip(0, 255).astype(np.uint8), y=d.target[:300])
    return load_npz(path)


def test_short_qat_scores_the_chip_arithmetic_of_a_low_bit_network(digits, monkeypatch) -> None:
    """With quantize=True an ai8x network is scored as the MAX78000 computes it: BatchNorm
    folded, vendor bias and shift rules, exact integers (``integer_forward``), not the
    unfolded fake-quantised network it trained as."""
    import nas.estimators._accuracy as acc
    import search_spaces._ai8x as ai8x

    space = get_space("ai8x", input_shape=digits.input_shape, num_classes=digits.num_classes, widths=(8, 16),
                      max_units=2, max_depth=2)
    scored: list = []
    real = ai8x.vendor_arithmetic

    def spy(module):
        scored.append(module)
        return real(module)

    monkeypatch.setitem(acc._SCORING_ARITHMETIC, "ai8x", spy)
    cfg = ShortTraining(epochs=3, train_images=180, batch_size=16)
    r = cfg.evaluate(space, space.parse("16k3b8,16k3b2|16k3b2,16k3b2|fcb8"), digits, seed=0)
    assert len(scored) == 1 and scored[0].folded
    x_int = np.clip(np.round(digits.x_val.astype(np.float64) * 128), -128, 127).astype(np.int64)
    chip = float((scored[0].integer_forward(x_int).argmax(1) == digits.y_val).mean())
    assert r.value == chip and r.details["n_val"] == len(digits.y_val)
    assert "BatchNorm folded" in cfg.describe() and "BatchNorm folded" not in ShortTraining(quantize=False).describe()
    # float short training is not converted
    scored.clear()
    ShortTraining(epochs=1, train_images=64, quantize=False).evaluate(space, space.parse("8k3b8|8k3b8|fcb8"), digits)
    assert scored == []
