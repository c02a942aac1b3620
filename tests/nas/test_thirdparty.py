"""The private names of Optuna and Ray that nas uses (all of them in ``nas/_thirdparty.py``)."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

from nas import _thirdparty

ROOT = Path(__file__).resolve().parents[2]


def test_the_installed_optuna_and_ray_still_have_them() -> None:
    """Fails with a message naming the missing name when an upgrade removed one."""
    _thirdparty.check_private_names(ray=True)


def test_a_missing_name_is_reported_by_name(monkeypatch: pytest.MonkeyPatch) -> None:
    def gone() -> type:
        raise ImportError("cannot import name 'BaseJournalFileLock'")

    monkeypatch.setattr(_thirdparty, "journal_file_lock_base", gone)
    with pytest.raises(RuntimeError, match=r"_file\.BaseJournalFileLock.*update nas/_thirdparty\.py"):
        _thirdparty.check_private_names(ray=False)


_PRIVATE_ATTRS = ("_storage", "_trial_id", "_ot_study", "_ot_trials", "_completed_trials")


def test_no_other_module_of_nas_touches_them() -> None:
    bad = []
    for f in sorted((ROOT / "nas").rglob("*.py")):
        if f.name == "_thirdparty.py":
            continue
        tree = ast.parse(f.read_text())
        for node in ast.walk(tree):
            if isinstance(node, ast.Attribute) and node.attr in _PRIVATE_ATTRS:
                bad.append(f"{f.relative_to(ROOT)}:{node.lineno} .{node.attr}")
            if isinstance(node, ast.ImportFrom) and node.module and node.module.split(".")[0] in ("optuna", "ray") \
                    and any(p.startswith("_") for p in node.module.split(".")):
                bad.append(f"{f.relative_to(ROOT)}:{node.lineno} from {node.module}")
    assert not bad, "third-party private names used outside nas/_thirdparty.py: " + ", ".join(bad)
