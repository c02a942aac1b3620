"""Contract tests run on every registered search space."""

from __future__ import annotations

import numpy as np
import optuna
import pytest

from search_spaces import ArchitectureError, get_space, list_spaces


def _call(fn, *args):
    try:
        return fn(*args)
    except NotImplementedError:
        pytest.skip(f"{fn.__qualname__} is not implemented")


@pytest.mark.parametrize("name", list_spaces())
def test_round_trip(name: str) -> None:
    space = get_space(name)
    rng = np.random.default_rng(0)
    for _ in range(10):
        arch = _call(space.random_arch, rng)
        text = space.format(arch)
        assert isinstance(text, str) and "\n" not in text
        assert space.parse(text) == space.parse(arch)
        assert space.format(space.parse(text)) == text


@pytest.mark.parametrize("name", list_spaces())
def test_encode_fixed_length(name: str) -> None:
    space = get_space(name)
    rng = np.random.default_rng(1)
    vecs = [np.asarray(space.encode(_call(space.random_arch, rng))) for _ in range(12)]
    assert all(v.ndim == 1 and np.isfinite(v).all() for v in vecs)
    assert len({v.shape for v in vecs}) == 1


@pytest.mark.parametrize("name", list_spaces())
def test_sample_with_optuna(name: str) -> None:
    space = get_space(name)
    study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=0))
    trial = study.ask()
    arch = _call(space.sample, trial)
    assert space.parse(space.format(arch)) == space.parse(arch)
    assert trial.params


@pytest.mark.parametrize("name", list_spaces())
@pytest.mark.parametrize("bad", ["", "not an architecture", 12345, None, [["x"]]])
def test_malformed_raises(name: str, bad: object) -> None:
    with pytest.raises(ArchitectureError):
        get_space(name).parse(bad)
