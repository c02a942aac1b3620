"""``nas search`` survives kills, damaged journals, odd run directories and concurrent runs (issue 16).

Kills are played by deterministic stand-ins: a planted stale lock, a cut journal, a SIGTERM sent
from inside a trial, two processes released together from a file barrier. Every subprocess has
a timeout, so a regression fails instead of hanging.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import optuna
import pytest

from nas.cli import main

ROOT = Path(__file__).resolve().parents[2]
NAME = "X"


@pytest.fixture
def tiny(tmp_path: Path) -> Path:
    rng = np.random.default_rng(0)
    data = tmp_path / "tiny.npz"
    np.savez(data, x=rng.integers(0, 256, (60, 8, 8), dtype=np.uint8), y=np.arange(60) % 3)
    return data


def _args(tiny: Path, runs: Path | str, trials: int, *extra: str, name: str = NAME) -> list[str]:
    return ["search", "--device", "max78000", "--budget", "20KB", "--accuracy", "proxy", "--no-qat",
            "--data", str(tiny), "--runs-dir", str(runs), "--trials", str(trials), "--name", name, *extra]


def _cli(args: list[str], cwd: Path, timeout: float = 90, **kw: object) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    return subprocess.run([sys.executable, "-m", "nas", *args], cwd=cwd, env=env, capture_output=True, text=True,
                          timeout=timeout, **kw)  # type: ignore[call-overload]


def _study(journal: Path, name: str = NAME) -> optuna.Study:
    storage = optuna.storages.JournalStorage(optuna.storages.journal.JournalFileBackend(str(journal)))
    return optuna.load_study(study_name=name, storage=storage)


def _complete(study: optuna.Study) -> int:
    return len(study.get_trials(states=(optuna.trial.TrialState.COMPLETE,)))


def _one_line(err: str) -> str:
    lines = err.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in err, err
    return lines[0]


# -- 1: a journal lock left by a killed search ---------------------------------------------------


def test_stale_relative_lock_link_does_not_hang_the_resume(tmp_path: Path, tiny: Path, capsys) -> None:
    """Issue case 1, deterministic form: ``ln -s runs/X/study.journal runs/X/study.journal.lock``
    (a relative target, dangling from the run directory), then resume from that cwd."""
    assert main(_args(tiny, tmp_path / "runs", 2)) == 0
    capsys.readouterr()
    os.symlink("runs/X/study.journal", tmp_path / "runs" / NAME / "study.journal.lock")
    proc = _cli(_args(tiny, "runs", 3), cwd=tmp_path, timeout=60)
    assert proc.returncode == 0, proc.stderr
    assert "stale journal lock" in proc.stderr
    assert not os.path.lexists(tmp_path / "runs" / NAME / "study.journal.lock")
    assert _complete(_study(tmp_path / "runs" / NAME / "study.journal")) == 3


def test_journal_lock_breaks_an_old_lock_and_links_an_absolute_path(tmp_path: Path, monkeypatch) -> None:
    from nas.search._journal import JournalLock

    journal = tmp_path / "study.journal"
    journal.write_text("")
    lock = tmp_path / "study.journal.lock"
    os.symlink("elsewhere/study.journal", lock)  # dangling
    old = time.time() - 3600
    os.utime(lock, (old, old), follow_symlinks=False)
    monkeypatch.chdir(tmp_path.parent)
    lk = JournalLock(Path(tmp_path.name) / "study.journal")
    assert lk.acquire()
    assert os.readlink(lock) == str(journal) and os.path.exists(lock)  # absolute: never dangles
    lk.release()
    assert not os.path.lexists(lock)
    with pytest.raises(RuntimeError):
        lk.release()


def test_killed_while_creating_the_study_resumes(tmp_path: Path, tiny: Path, capsys) -> None:
    """A SIGKILL between the study's creation and its settings record (found by killing at the
    moment the journal lock existed) left a study whose resume was refused as "--device = None"."""
    journal = tmp_path / "runs" / NAME / "study.journal"
    journal.parent.mkdir(parents=True)
    storage = optuna.storages.JournalStorage(optuna.storages.journal.JournalFileBackend(str(journal)))
    optuna.create_study(study_name=NAME, storage=storage, directions=["maximize", "minimize"])
    assert main(_args(tiny, tmp_path / "runs", 1)) == 0
    assert "without settings or trials" in capsys.readouterr().err
    assert _complete(_study(journal)) == 1


# -- 2: a journal cut short or with garbage appended ---------------------------------------------


@pytest.mark.parametrize("damage", ["cut", "garbage"])
def test_damaged_journal_end_is_recovered_never_written_to(tmp_path: Path, tiny: Path, capsys, damage: str) -> None:
    runs = tmp_path / "runs"
    assert main(_args(tiny, runs, 2)) == 0
    capsys.readouterr()
    journal = runs / NAME / "study.journal"
    if damage == "cut":
        os.truncate(journal, journal.stat().st_size - 150)
    else:
        with open(journal, "ab") as f:
            f.write(b"this is not json\n")
    damaged = journal.read_bytes()
    assert main(_args(tiny, runs, 3)) == 0
    err = capsys.readouterr().err
    assert "damaged at its end" in err and "intact record(s) now make a fresh study.journal" in err
    kept = [p for p in (runs / NAME).iterdir() if p.name.startswith("study.journal.damaged-")]
    assert len(kept) == 1 and kept[0].name in err
    assert kept[0].read_bytes() == damaged  # kept byte for byte
    fresh = journal.read_bytes()
    assert fresh.endswith(b"\n") and all(json.loads(line) for line in fresh.splitlines())
    assert _complete(_study(journal)) == 3  # optuna reads it, and it holds the search's trials
    assert main(_args(tiny, runs, 4)) == 0  # and it goes on
    assert _complete(_study(journal)) == 4


def test_damage_inside_the_journal_is_refused_and_left_as_it_was(tmp_path: Path, tiny: Path, capsys) -> None:
    runs = tmp_path / "runs"
    assert main(_args(tiny, runs, 2)) == 0
    capsys.readouterr()
    journal = runs / NAME / "study.journal"
    lines = journal.read_bytes().splitlines(keepends=True)
    k = len(lines) // 2
    lines.insert(k, b'{"op_code": 5, "cut\n')
    journal.write_bytes(b"".join(lines))
    before = sorted(os.listdir(runs / NAME))
    assert main(_args(tiny, runs, 3)) == 2
    line = _one_line(capsys.readouterr().err)
    assert "study.journal" in line and f"line {k + 1} of {len(lines)}" in line
    assert journal.read_bytes() == b"".join(lines) and sorted(os.listdir(runs / NAME)) == before


def test_empty_journal_is_said(tmp_path: Path, tiny: Path, capsys) -> None:
    (tmp_path / "runs" / NAME).mkdir(parents=True)
    (tmp_path / "runs" / NAME / "study.journal").write_bytes(b"")
    assert main(_args(tiny, tmp_path / "runs", 1)) == 0
    assert "study.journal is empty" in capsys.readouterr().err


# -- 4: seeds ------------------------------------------------------------------------------------


@pytest.mark.parametrize("seed", ["-1", "4294967296", "99999999999999999999"])
def test_bad_seed_exits_2_and_writes_nothing(tmp_path: Path, tiny: Path, capsys, seed: str) -> None:
    assert main(_args(tiny, tmp_path / "runs", 1, f"--seed={seed}")) == 2
    assert "--seed" in _one_line(capsys.readouterr().err)
    assert not (tmp_path / "runs").exists()


def test_large_seeds_run(tmp_path: Path, tiny: Path, capsys) -> None:
    from nas.search import sampler_seed

    for seed in (4295, 2**32 - 1):
        assert main(_args(tiny, tmp_path / "runs", 1, "--seed", str(seed), name=f"s{seed}")) == 0
        assert _complete(_study(tmp_path / "runs" / f"s{seed}" / "study.journal", f"s{seed}")) == 1
    assert sampler_seed(3, 5, shared=False) == 3 * 1_000_003 + 5  # unchanged for the seeds that worked
    assert all(0 <= sampler_seed(2**32 - 1, n, shared=s) < 2**32 for n in (0, 10**6) for s in (False, True))


# -- 5: a shared --storage -----------------------------------------------------------------------

_RACE = """
import sys, time
from pathlib import Path
me, other = Path(sys.argv[1]), Path(sys.argv[2])
me.touch()
deadline = time.monotonic() + 60
while not other.exists() and time.monotonic() < deadline:
    time.sleep(0.01)
from nas.cli import main
sys.exit(main(sys.argv[3:]))
"""


def test_shared_storage_respects_trials_and_draws_apart(tmp_path: Path, tiny: Path) -> None:
    url = f"sqlite:///{tmp_path / 'shared.db'}"
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    procs = []
    for i in range(2):
        args = _args(tiny, tmp_path / f"runs{i}", 4, "--storage", url, name="shared")
        procs.append(subprocess.Popen([sys.executable, "-c", _RACE, str(tmp_path / f"b{i}"),
                                       str(tmp_path / f"b{1 - i}"), *args], env=env,
                                      stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True))
    for p in procs:
        _, err = p.communicate(timeout=180)
        assert p.returncode == 0, err
    study = optuna.load_study(study_name="shared", storage=url)
    assert _complete(study) == 4  # not 4 per process
    done = study.get_trials(states=(optuna.trial.TrialState.COMPLETE,))
    by_worker: dict[str, list[str]] = {}
    for t in done:
        by_worker.setdefault(t.user_attrs["worker"], []).append(t.user_attrs["arch"])
    if len(by_worker) == 2:  # both processes ran trials: identically seeded, they still draw apart
        first = [archs[0] for archs in by_worker.values()]
        assert first[0] != first[1]


# -- 9, 10, 11: odd run directories --------------------------------------------------------------


def test_renamed_run_directory_is_detected(tmp_path: Path, tiny: Path, capsys) -> None:
    runs = tmp_path / "runs"
    assert main(_args(tiny, runs, 1, name="A")) == 0
    capsys.readouterr()
    (runs / "A").rename(runs / "B")
    journal = (runs / "B" / "study.journal").read_bytes()
    assert main(_args(tiny, runs, 2, name="B")) == 2
    line = _one_line(capsys.readouterr().err)
    assert "'A'" in line and "renamed" in line
    assert (runs / "B" / "study.journal").read_bytes() == journal


def test_odd_run_directories_exit_2(tmp_path: Path, tiny: Path, capsys) -> None:
    runs = tmp_path / "runs"
    runs.mkdir()
    (runs / "file").write_text("x")
    assert main(_args(tiny, runs, 1, name="file")) == 2
    assert "runs/file" in _one_line(capsys.readouterr().err)
    assert (runs / "file").read_text() == "x"
    (runs / "dir" / "study.journal").mkdir(parents=True)
    assert main(_args(tiny, runs, 1, name="dir")) == 2
    assert "study.journal" in _one_line(capsys.readouterr().err)
    assert os.listdir(runs / "dir") == ["study.journal"]


@pytest.mark.skipif(hasattr(os, "geteuid") and os.geteuid() == 0, reason="root writes into read-only directories")
def test_read_only_run_directory_exits_2(tmp_path: Path, tiny: Path, capsys) -> None:
    runs = tmp_path / "runs"
    assert main(_args(tiny, runs, 1)) == 0
    capsys.readouterr()
    (runs / NAME).chmod(0o555)
    try:
        assert main(_args(tiny, runs, 2)) == 2
        assert "not writable" in _one_line(capsys.readouterr().err)
    finally:
        (runs / NAME).chmod(0o755)


def test_bad_storage_leaves_nothing_behind(tmp_path: Path, tiny: Path, capsys) -> None:
    runs = tmp_path / "runs"
    url = f"sqlite:///{tmp_path / 'no-such-dir' / 'x.db'}"
    assert main(_args(tiny, runs, 1, "--storage", url)) == 2
    assert "--storage" in _one_line(capsys.readouterr().err)
    assert not (runs / NAME).exists()
    assert main(_args(tiny, runs, 1)) == 0  # the name is free


def test_a_leftover_run_lock_does_not_block_the_name(tmp_path: Path, tiny: Path, capsys) -> None:
    (tmp_path / "runs" / NAME).mkdir(parents=True)
    (tmp_path / "runs" / NAME / ".lock").write_text("")
    assert main(_args(tiny, tmp_path / "runs", 1)) == 0


_TERM = """
import os, signal, sys
import nas.search._run as s
from nas.search import Prepared
real = s.estimate_arch
def estimate(prep, arch):
    if len(prep.done_archs) >= 1:
        os.kill(os.getpid(), signal.SIGTERM)
    prep.done_archs.append(arch)
    return real(prep, arch)
s.estimate_arch = estimate
Prepared.done_archs = []
from nas.cli import main
sys.exit(main(sys.argv[1:]))
"""


def test_sigterm_fails_the_trial_in_flight_and_exits_143(tmp_path: Path, tiny: Path) -> None:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    proc = subprocess.run([sys.executable, "-c", _TERM, *_args(tiny, tmp_path / "runs", 5)], env=env,
                          capture_output=True, text=True, timeout=90)
    assert proc.returncode == 143, proc.stderr
    assert "terminated" in proc.stderr.strip().splitlines()[-1] and "Traceback" not in proc.stderr
    states = [t.state for t in _study(tmp_path / "runs" / NAME / "study.journal").trials]
    assert optuna.trial.TrialState.RUNNING not in states and states[-1] == optuna.trial.TrialState.FAIL
    assert states.count(optuna.trial.TrialState.COMPLETE) >= 1


def test_stale_tune_folders_of_dead_drivers_are_removed(tmp_path: Path, monkeypatch) -> None:
    from nas.search import clean_stale_tune_dirs

    monkeypatch.setattr("tempfile.tempdir", str(tmp_path))
    dead = subprocess.Popen(["true"])
    dead.wait()
    (tmp_path / f"nas-tune-{dead.pid}-abc" / "nas").mkdir(parents=True)
    (tmp_path / f"nas-tune-{os.getpid()}-def").mkdir()  # a live driver's
    (tmp_path / "nas-tune-oldstyle").mkdir()  # no owner recorded: left alone
    assert clean_stale_tune_dirs() == 1
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted([f"nas-tune-{os.getpid()}-def", "nas-tune-oldstyle"])


# -- --timeout -----------------------------------------------------------------------------------


def test_timeout_stops_after_the_trial_in_flight(tmp_path: Path, tiny: Path, monkeypatch, capsys) -> None:
    import nas.search._study as s

    clock = iter(range(0, 10_000, 10))  # every look at the clock: 10 s later
    monkeypatch.setattr(s, "clock", lambda: float(next(clock)))
    assert main(_args(tiny, tmp_path / "runs", 50, "--timeout", "25s")) == 0
    cap = capsys.readouterr()
    n = _complete(_study(tmp_path / "runs" / NAME / "study.journal"))
    assert 1 <= n < 50
    assert "--timeout 25s" in cap.out and f"{n} of 50" in cap.out


@pytest.mark.parametrize("text,word", [("abc", "--timeout"), ("0s", "--timeout"), ("-3min", "--timeout")])
def test_bad_timeout_exits_2(tmp_path: Path, tiny: Path, capsys, text: str, word: str) -> None:
    assert main(_args(tiny, tmp_path / "runs", 1, f"--timeout={text}")) == 2
    assert word in _one_line(capsys.readouterr().err)
    assert not (tmp_path / "runs").exists()


def test_timeout_parses_minutes_and_hours() -> None:
    from nas.cli._units import parse_duration_s

    assert parse_duration_s("30min") == 1800 and parse_duration_s("1.5h") == 5400 and parse_duration_s("90s") == 90
    assert parse_duration_s("90") == 90


def test_help_names_timeout(capsys) -> None:
    with pytest.raises(SystemExit):
        main(["search", "--help"])
    assert "--timeout" in capsys.readouterr().out
