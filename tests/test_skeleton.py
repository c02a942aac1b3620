from __future__ import annotations

import pytest

from nas.cli._units import parse_size, parse_time_ms
from search_spaces import InputError


@pytest.mark.parametrize(
    "text,expected",
    [("400KB", 400_000), ("432KiB", 442_368), ("4MB", 4_000_000), ("1MiB", 1_048_576), ("71148B", 71148), ("512", 512)],
)
def test_parse_size(text: str, expected: int) -> None:
    assert parse_size(text) == expected


@pytest.mark.parametrize("text", ["40XB", "", "-3KB", "0KB", "KB", "4 4KB"])
def test_parse_size_rejects(text: str) -> None:
    with pytest.raises(InputError):
        parse_size(text)


@pytest.mark.parametrize("text,expected", [("2ms", 2.0), ("1500us", 1.5), ("0.02s", 20.0), ("3", 3.0)])
def test_parse_time(text: str, expected: float) -> None:
    assert parse_time_ms(text) == pytest.approx(expected)


@pytest.mark.parametrize("text", ["2 hours", "-1ms", "0s", "ms"])
def test_parse_time_rejects(text: str) -> None:
    with pytest.raises(InputError):
        parse_time_ms(text)
