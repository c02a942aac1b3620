"""The README and docs/: links resolve, cited results files exist, the README stays one screen."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
README = ROOT / "README.md"
README_MAX_LINES = 80
DOCS = sorted((ROOT / "docs").glob("*.md"))
MARKDOWN = [README, ROOT / "predictors" / "README.md", *DOCS]
PACKAGES = ("nas", "predictors", "devices", "search_spaces")

_LINK = re.compile(r"\[[^\]]*\]\(([^)\s]+)\)")
# a repository path to a benchmark script or results file, as text (e.g. in backticks or a docstring)
_BENCH_PATH = re.compile(r"benchmarks/(?:results/)?[\w*.<>-]+\.(?:md|py)")


def _relative_links(md: Path) -> list[str]:
    links = []
    for target in _LINK.findall(md.read_text(encoding="utf-8")):
        if re.match(r"[a-z][a-z0-9+.-]*:", target) or target.startswith("#"):
            continue  # a URL (https:, mailto:) or an anchor in the same file
        links.append(target.split("#", 1)[0])
    return links


def _exists(path_text: str) -> bool:
    """Whether a repository path exists; ``*`` matches as a glob, ``<name>`` as any part."""
    pattern = re.sub(r"<[^>]+>", "*", path_text)
    return any(ROOT.glob(pattern)) if "*" in pattern else (ROOT / pattern).exists()


def test_readme_links_every_docs_page() -> None:
    names = {p.name for p in DOCS}
    assert {"max78000.md", "devices.md", "predictor.md", "ray.md", "benchmarks.md"} <= names
    linked = {(ROOT / t).resolve() for t in _relative_links(README)}
    unlinked = [p.name for p in DOCS if p.resolve() not in linked]
    assert not unlinked, f"README.md's link table misses docs/{unlinked}"


@pytest.mark.parametrize("md", MARKDOWN, ids=lambda p: str(p.relative_to(ROOT)))
def test_relative_links_point_to_existing_files(md: Path) -> None:
    missing = [t for t in _relative_links(md) if not (md.parent / t).resolve().exists()]
    assert not missing, f"{md.relative_to(ROOT)} links to missing files: {missing}"


@pytest.mark.parametrize("md", MARKDOWN, ids=lambda p: str(p.relative_to(ROOT)))
def test_benchmark_paths_named_in_docs_exist(md: Path) -> None:
    named = set(_BENCH_PATH.findall(md.read_text(encoding="utf-8")))
    missing = sorted(p for p in named if not _exists(p))
    assert not missing, f"{md.relative_to(ROOT)} names missing benchmark files: {missing}"


def test_results_files_cited_in_code_exist() -> None:
    missing = []
    for pkg in PACKAGES:
        for py in sorted((ROOT / pkg).rglob("*.py")):
            for p in set(_BENCH_PATH.findall(py.read_text(encoding="utf-8"))):
                if not _exists(p):
                    missing.append(f"{py.relative_to(ROOT)}: {p}")
    assert not missing, "cited benchmark files that do not exist:\n" + "\n".join(missing)


def test_readme_is_one_screen() -> None:
    n = len(README.read_text(encoding="utf-8").splitlines())
    assert n <= README_MAX_LINES, f"README.md has {n} lines; keep it to {README_MAX_LINES} and move detail to docs/"


def _ci_commands() -> list[str]:
    lines = (ROOT / ".ci" / "run").read_text(encoding="utf-8").splitlines()
    return [ln.strip() for ln in lines
            if ln.strip() and not ln.lstrip().startswith("#") and not re.match(r"(set|cd)\b", ln.strip())]


def _make_recipe(target: str) -> list[str]:
    lines = (ROOT / "Makefile").read_text(encoding="utf-8").splitlines()
    start = next(i for i, ln in enumerate(lines) if re.match(rf"{target}\s*:", ln))
    recipe = []
    for ln in lines[start + 1:]:
        if not ln.startswith("\t"):
            break
        recipe.append(ln.strip().replace("$(BIN)/", ""))
    return recipe


def test_readme_shows_the_commands_ci_and_make_run() -> None:
    text = README.read_text(encoding="utf-8")
    ci = _ci_commands()
    assert ci, ".ci/run runs no command"
    for cmd in ci:
        assert cmd in text, f"README.md does not show {cmd!r}, which .ci/run runs"
    assert "make run" in text
    for cmd in _make_recipe("run"):
        assert cmd in text, f"README.md does not show {cmd!r}, which `make run` runs"
