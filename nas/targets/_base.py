"""Search targets: what differs between the MAX78000-family accelerators (``ai8x`` space, rule
checker and cycle model) and the devices with predicted or measured latency (phones, host-cpu,
registered devices; ``fbnet`` space) lives behind :class:`Target`.

A target makes the space for the data, checks a trial (constraints, figures), writes the Pareto
rows and the report, and for ``nas qat`` switches a model to the device's arithmetic, computes
the device figures and exports. Targets are registered (:func:`register_target`) and found by
name (:func:`get_target`), for a device (:func:`target_for_device`) or for a run's space
(:func:`target_for_space`).
"""

from __future__ import annotations

import csv
import re
from abc import ABC, abstractmethod
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar, TypeVar

from search_spaces import InputError

from ..record import RunRecord, SupernetRecord

__all__ = ["Target", "TrialCheck", "register_target", "get_target", "list_targets", "target_for_device",
           "target_for_space", "target_for_run", "space_in_run_name", "UnknownTargetError", "record_check", "study_location", "supernet_files",
           "estimate_notes", "bits_line", "torch_device_note"]


class UnknownTargetError(InputError):
    """No target of that name, or none for that device or space."""


@dataclass
class TrialCheck:
    """What the device check of one sampled architecture found (already set on the trial).

    Attributes:
        arch_s: the architecture as text (``space.format``; ``space.parse`` reads it back).
        latency_ms: the device's latency estimate.
        feasible: every constraint <= 0.
        needs_estimate: the accuracy estimate should run (feasible, or a cheap estimator).
        constraints: the values given to ``Trial.set_constraint``.
    """

    arch_s: str
    latency_ms: float
    feasible: bool
    needs_estimate: bool
    constraints: dict[str, float]


class Target(ABC):
    """What a search, ``nas qat`` and the export need to know about one kind of device.

    Attributes:
        name: the registry name.
        space_name: the search space searched on this target by default.
        spaces: every space the target can search.
        csv_columns: the columns of ``pareto.csv``.
        latency_note: how latency is obtained (``qat.md``).
    """

    name: ClassVar[str] = ""
    space_name: str = ""
    spaces: tuple[str, ...] = ()
    csv_columns: list[str] = []
    net_suffix: str = ""
    """Suffix of the network files the search writes under ``nets/``."""
    example_device: str = ""
    """A built-in device searched with this target (tests run one search per target on it)."""
    space_implied: bool = False
    """The device implies the space: a run's default name does not name it."""

    # ------------------------------------------------------------------ devices
    @abstractmethod
    def accepts(self, device: Any) -> int:
        """How specifically this target handles ``device`` (0: not at all; the most specific
        target wins)."""

    def rule_report(self, device: Any, network: Any) -> Any:
        """The device's rule check of a hardware network description (None: the device has no
        rule checker, only a latency)."""
        return None

    # ------------------------------------------------------------------ search set-up
    @abstractmethod
    def check_options(self, cfg: Any, device: Any) -> tuple[str, float]:
        """The space to search and the latency margin, after checking the options that depend
        on the target (``--space``, ``--ram``, ``--latency-margin``, ``--bits``).

        Raises:
            InputError: an option that does not apply, or a bad value.
        """

    @abstractmethod
    def budget(self, cfg: Any, device: Any) -> int:
        """The weight (or int8 size) budget in bytes of a search (-1: none)."""

    sizes_supernet: bool = False
    """Whether the supernet's covered widths are sized from a time budget (``--supernet-budget``)."""

    def estimator_options(self, est_key: str, options: dict[str, Any]) -> dict[str, Any]:
        """The estimator's options with this target's defaults."""
        return options

    @abstractmethod
    def space_options(self, cfg: Any) -> tuple[dict[str, Any], bool]:
        """The space's options and whether the weight bits are chosen automatically."""

    @abstractmethod
    def make_space(self, space_name: str, data: Any, options: dict[str, Any]) -> Any:
        """The search space for ``data``.

        Raises:
            InputError: data the space cannot take.
        """

    def choose_bits(self, space: Any, device: Any, budget: int, probe: Any, options: dict[str, Any],
                    data: Any) -> tuple[Any, str | None]:
        """``space`` with automatically chosen weight bits, and why (None: nothing chosen)."""
        return space, None

    @abstractmethod
    def supernet_record(self, estimator: Any, space: Any) -> SupernetRecord:
        """What the run record says about the supernet the estimate uses."""

    @abstractmethod
    def record_fields(self, cfg: Any, device: Any, budget: int, margin: float) -> dict[str, Any]:
        """The run record's budget and target-specific entries."""

    # ------------------------------------------------------------------ trials and outputs
    @abstractmethod
    def check_trial(self, prep: Any, trial: Any) -> TrialCheck:
        """Sample an architecture on ``trial``, check it on the device, set constraints and
        user_attrs (:func:`record_check`)."""

    @abstractmethod
    def pareto_rows(self, trials: list[Any], prep: Any, nets_dir: Path) -> list[dict[str, Any]]:
        """Re-check and save every Pareto-optimal feasible network (``trials``); one row each."""

    @abstractmethod
    def report_md(self, prep: Any, rows: list[dict[str, Any]], trials: list[dict[str, Any]]) -> str:
        """``report.md`` of a search."""

    @abstractmethod
    def plot_text(self, prep: Any, n_trials: int) -> tuple[str, str]:
        """(title, x-axis label) of ``pareto.png``."""

    @abstractmethod
    def front_table(self, prep: Any, front: list[dict[str, Any]]) -> tuple[list[str], list[list[str]]]:
        """The target's columns of the command line's Pareto table and their cells per row
        (after trial, estimate and latency)."""

    # ------------------------------------------------------------------ nas qat
    @abstractmethod
    def qat_space(self, record: RunRecord) -> Any:
        """The run's search space, rebuilt from its record."""

    def network(self, space: Any, arch: str) -> Any:
        """The hardware network description of ``arch`` (None where the target has none)."""
        return None

    @abstractmethod
    def to_quantised(self, model: Any, xs: tuple[Any, ...], cfg: Any) -> Any:
        """``model`` (float, trained) switched to the device's arithmetic for QAT."""

    def anneal_epochs(self, cfg: Any) -> int:
        """QAT epochs that anneal from float to quantised weights."""
        return 0

    @abstractmethod
    def device_figures(self, record: RunRecord, arch: str, network: Any = None) -> dict[str, Any]:
        """The device's figures for one network, recomputed."""

    @abstractmethod
    def export(self, model: Any, net: Any, out_dir: Path, *, record: RunRecord, data: Any, space: Any,
               network: Any) -> tuple[dict[str, Path], dict[str, Any], list[str], list[str]]:
        """Export one QAT'd network: (files, extra figures, the model card's device section, the
        model card's closing lines)."""

    @abstractmethod
    def size_text(self, figures: dict[str, Any]) -> str:
        """The weights cell of the QAT results table."""

    @abstractmethod
    def qat_notes(self, q: dict[str, Any]) -> tuple[str, str, str]:
        """(anneal note of the training line, the arithmetic, the latency) for ``qat.md``."""


T = TypeVar("T", bound=Callable[..., Target])
_TARGETS: dict[str, Callable[[], Target]] = {}


def register_target(name: str) -> Callable[[T], T]:
    """Register a target factory (a class, or a function returning a :class:`Target`) under ``name``.

    Raises:
        ValueError: ``name`` is already registered.
    """

    def deco(factory: T) -> T:
        if name in _TARGETS:
            raise ValueError(f"target {name!r} is already registered")
        _TARGETS[name] = factory
        return factory

    return deco


def list_targets() -> list[str]:
    """Names of the registered targets, in registration order."""
    return list(_TARGETS)


def get_target(name: str) -> Target:
    """The target registered as ``name``.

    Raises:
        UnknownTargetError: no such target.
    """
    factory = _TARGETS.get(name)
    if factory is None:
        raise UnknownTargetError(f"unknown target {name!r}; available: {', '.join(_TARGETS)}")
    return factory()


def target_for_device(device: Any) -> Target:
    """The most specific target for ``device``.

    Raises:
        UnknownTargetError: no target handles it.
    """
    best: tuple[int, Target] | None = None
    for name in _TARGETS:
        t = get_target(name)
        score = t.accepts(device)
        if score > 0 and (best is None or score > best[0]):
            best = (score, t)
    if best is None:
        raise UnknownTargetError(f"nas search has no target for device {getattr(device, 'name', device)!r}")
    return best[1]


def target_for_space(space: str, device: str | None = None) -> Target:
    """The target that searches ``space`` (on the device named ``device`` when several do).

    Raises:
        UnknownTargetError: no target searches it.
    """
    found = [get_target(n) for n in _TARGETS if space in get_target(n).spaces]
    if device is not None:
        named = [t for t in found if getattr(t, "device_name", None) == device]
        found = named or found
    if not found:
        raise UnknownTargetError(f"no target searches the space {space!r}")
    return found[0]


def space_in_run_name(space: str) -> bool:
    """Whether a run's default name names ``space`` when it is given: not when a target's device
    implies it (``ai8x`` on the MAX78000 family)."""
    return not any(space in get_target(n).spaces and get_target(n).space_implied for n in _TARGETS)


def target_for_run(space: str, device: str) -> Target:
    """The target of a run on the device named ``device`` searching ``space`` (the device's own
    target; the space's when the device is no longer known)."""
    from devices import get_device

    try:
        return target_for_device(get_device(device))
    except InputError:
        return target_for_space(space, device)


# ---------------------------------------------------------------------- shared parts of the targets
def record_check(prep: Any, trial: Any, arch_s: str, latency_ms: float, cons: dict[str, float],
                  figures: dict[str, Any]) -> TrialCheck:
    """Set a checked trial's constraints and its ``arch``/``feasible``/``device`` user_attrs."""
    for k, v in cons.items():
        trial.set_constraint(k, v)
    ok = all(v <= 0 for v in cons.values())
    trial.set_user_attr("arch", arch_s)
    trial.set_user_attr("feasible", ok)
    trial.set_user_attr("device", figures)
    # naswot is cheap: score infeasible candidates too; short training and the supernet estimate
    # (about a second each) are skipped for them.
    needs = ok or prep.estimator.key == "naswot"
    return TrialCheck(arch_s=arch_s, latency_ms=latency_ms, feasible=ok, needs_estimate=needs, constraints=cons)


def study_location(prep: Any) -> str:
    """Where the study lives: the run's journal file, or the RDB URL with any password masked."""
    if prep.cfg.storage is None:
        return str(prep.run_dir / "study.journal")
    return re.sub(r"(://[^:/@]+):[^@]*@", r"\1:***@", prep.cfg.storage)


def supernet_files(prep: Any) -> dict[str, Any] | None:
    """The supernet's cache folder, training log and last log row (None for other estimates)."""
    info = prep.record.supernet
    if info is None:
        return None
    path = Path(info.cache)
    log = path / "train_log.csv"
    last: dict[str, Any] = {}
    if log.is_file():
        with log.open() as f:
            rows = list(csv.DictReader(f))
        last = rows[-1] if rows else {}
    return {"cache": str(path), "train_log": str(log), "last_epoch": last,
            "searched_widths": None if info.searched_widths is None else list(info.searched_widths),
            "width_cap": info.width_cap}


def bits_line(record: RunRecord) -> str:
    note = record.bits_auto
    return f"\n- weight bits searched: {note}" if note else ""


def torch_device_note(prep: Any) -> str:
    """The report's line naming the torch device of the estimates (empty when not recorded)."""
    dev = getattr(prep.record, "torch_device", None)
    return (f"- torch device of the estimates (and of the supernet's training when this call trained it): {dev}\n"
            if dev else "")


def estimate_notes(prep: Any) -> str:
    return torch_device_note(prep) + _estimate_notes(prep)


def _estimate_notes(prep: Any) -> str:
    sn = supernet_files(prep)
    if sn is None:
        return ("It ranks candidates; it is not the accuracy of a trained network. Across weight bit widths "
                "NASWOT barely moves, while short-QAT, scored in the chip's arithmetic after BatchNorm is folded "
                "without training after the fold, drops far at 4 and 2 bits "
                "(benchmarks/results/short_qat_bits_vendor.md); the default `--accuracy supernet` "
                "is measured in benchmarks/results/supernet_mnist5k_vendor.md.\n")
    last = sn["last_epoch"]
    end = (f" Its last epoch ({last.get('epoch')}, {last.get('phase')}): validation accuracy "
           f"{last.get('val_acc_largest')} (largest sub-network) / {last.get('val_acc_smallest')} (smallest), "
           f"{last.get('seconds')} s of training"
           + (f" on torch device {last['torch_device']}" if last.get("torch_device") else "") + "." if last else "")
    if sn["searched_widths"] is None:  # the fbnet supernet covers its whole space
        return (f"- supernet (weights, `config.json`): `{sn['cache']}`\n"
                f"- its training log: `{sn['train_log']}`.{end}\n"
                "- it covers every op of every layer of the fbnet space.\n"
                "Its ranking of sub-networks against stand-alone training is measured by "
                "`benchmarks/bench_supernet_fbnet.py` (results in benchmarks/results/supernet_fbnet_*.md).\n")
    return (f"- supernet (weights, `config.json`): `{sn['cache']}`\n"
            f"- its training log: `{sn['train_log']}`.{end}\n"
            f"- searched widths {sn['searched_widths']}: the supernet covers these ({sn['width_cap']}).\n"
            "Its ranking of sub-networks against stand-alone training and its response to weight bit widths "
            "are measured by `benchmarks/bench_supernet.py` (results in benchmarks/results/supernet_mnist5k_vendor.md).\n")
