"""The MAX78000-family target: the ``ai8x`` space on an accelerator with the vendor's rules, kernel
placement and cycle model (``devices``), the vendor's QAT arithmetic and the synthesis export.

One class, :class:`Ai8xTarget`, parametrised by the accelerator's device name: each chip of the
family is one registration (``max78000``; a chip with the same interface registers the same way).
"""

from __future__ import annotations

import datetime as _dt
from pathlib import Path
from typing import Any

from search_spaces import InputError, ai8x_hardware, get_space

from ..export import accelerator_card_lines, export_max78000, vendor_commands
from ..record import RunRecord, SupernetRecord
from ..supernet import Sizing, covered_space, format_duration
from ._base import (
    Target,
    TrialCheck,
    bits_line,
    estimate_notes,
    record_check,
    register_target,
    study_location,
)

__all__ = ["Ai8xTarget", "CSV_COLUMNS", "MAX78000_DEFAULT_BITS", "auto_bits", "chip_coverage"]

MAX78000_DEFAULT_BITS = (2, 4, 8)
"""Hidden-layer weight bit widths a MAX78000 search offers unless ``space_options["bits"]`` says otherwise."""

CSV_COLUMNS = [
    "trial", "arch", "estimate", "estimate_metric", "latency_ms", "cycles", "weight_bytes", "weight_capacity_bytes",
    "bias_bytes", "layers", "bit_widths", "max_column", "kernel_processor_columns", "data_memory_bytes",
    "input_load_ms", "macs", "fits", "violations", "network_file",
]


def auto_bits(space: Any, device: Any, budget: int) -> tuple[tuple[int, ...], str]:
    """The default hidden-layer bit widths of a MAX78000 search and a sentence saying why.

    The MAX78000's latency does not depend on weight bits (only kernel memory does), so lower
    bits can only lose accuracy unless memory demands them: when the largest network the search
    can propose (every unit at full depth, widest, largest kernel) fits ``budget`` and the
    device's memory rules at 8 bits, only 8-bit weights are searched; otherwise the bits of
    :data:`MAX78000_DEFAULT_BITS`.
    """
    w, k = space.widths[-1], space.kernels[-1]
    arch = {"units": [[{"width": w, "kernel": k, "bits": 8}] * space.max_depth] * space.max_units, "fc_bits": 8}
    rep = device.report(space.network(arch))
    if rep.fits and rep.weight_bytes <= budget:
        return (8,), (f"8 only (auto): the largest network the search can propose ({space.max_units} units x "
                      f"{space.max_depth} layers of {w} channels, {k}x{k}) fits at 8 bits ({rep.weight_bytes:,} B of "
                      f"the {budget:,} B budget), and lower bits save only weight memory on the MAX78000, never "
                      "latency; --bits 2,4,8 searches them anyway")
    why = "it breaks a memory rule" if not rep.fits else f"its {rep.weight_bytes:,} B exceed the {budget:,} B budget"
    bits = ", ".join(map(str, MAX78000_DEFAULT_BITS))
    return MAX78000_DEFAULT_BITS, (f"{bits} (auto): the largest network the search can propose does not fit at 8 "
                                   f"bits ({why}), so lower bits are searched to fit more into memory")


def _largest_bytes(space: Any, device: Any, width: int, units: int) -> int:
    """Weight bytes at 8 bits of ``units`` units x ``max_depth`` layers of ``width`` channels
    with the space's largest kernel (the device's count, whether or not it fits)."""
    k = space.kernels[-1]
    arch = {"units": [[{"width": width, "kernel": k, "bits": 8}] * space.max_depth] * units, "fc_bits": 8}
    return int(device.report(space.network(arch)).weight_bytes)


def chip_coverage(prep: Any) -> dict[str, Any] | None:
    """How much of the chip the searched (supernet-covered) space can use, or None (the search
    did not use the ai8x supernet).

    Returns:
        ``largest_bytes`` (the largest covered network at 8 bits), ``budget``, ``capacity`` (the
        chip's weight memory), ``binds`` (largest > budget), ``width``/``units``/``depth``/``kernel``
        of that network, ``full_bytes`` and ``full_widths`` (the space without the supernet's cap),
        ``needed_width`` (the narrowest width whose largest network at the covered unit count
        exceeds the budget, None if none does) and ``needed_bytes``.
    """
    sn = prep.record.supernet
    if sn is None or sn.searched_widths is None:
        return None
    space, device, budget = prep.space, prep.device, int(prep.budget)
    full = prep.target.qat_space(prep.record)  # the space before the supernet's cap
    largest = _largest_bytes(space, device, space.widths[-1], space.max_units)
    needed = next(((w, b) for w in full.widths
                   if (b := _largest_bytes(full, device, w, space.max_units)) > budget), (None, None))
    return {"largest_bytes": largest, "budget": budget, "capacity": prep.target.weight_capacity,
            "binds": largest > budget, "width": space.widths[-1], "units": space.max_units, "depth": space.max_depth,
            "kernel": space.kernels[-1], "full_widths": list(full.widths),
            "full_bytes": _largest_bytes(full, device, full.widths[-1], full.max_units), "full_units": full.max_units,
            "needed_width": needed[0], "needed_bytes": needed[1]}


def _sizing_of(prep: Any) -> Sizing | None:
    rec = prep.record.supernet.sizing if prep.record.supernet is not None else None
    try:
        return None if rec is None else Sizing.from_dict(rec)
    except (ValueError, KeyError, TypeError):
        return None


def _fix_hint(cov: dict[str, Any], sizing: Sizing | None) -> str:
    """How to let the budget bind (a wider covered space)."""
    w = cov["needed_width"]
    if w is None:
        return (f"even the full ai8x space's largest network ({cov['full_bytes']:,} B) stays below the budget, so no "
                "setting lets it bind")
    pred = {c[0]: c[2] for c in sizing.candidates} if sizing is not None else {}
    when = f", predicted to train in {format_duration(pred[w])} here" if w in pred else ""
    return (f"a network above it needs width {w} ({cov['needed_bytes']:,} B at 8 bits{when}): give a larger "
            f"--supernet-budget (or --supernet-max-width {w}), or train the supernet on a GPU (--torch-device cuda)")


def coverage_md(prep: Any) -> str:
    """The report's section on the compute budget and how much of the chip the space can use."""
    cov = chip_coverage(prep)
    if cov is None:
        return ""
    st = prep.estimator.supernet_settings()
    sizing = _sizing_of(prep)
    if st.max_width is not None:
        compute = f"none: --supernet-max-width {st.max_width} given (it overrides any time budget)"
    elif sizing is not None:
        cands = ", ".join(f"{w} ({s:.3g} s/step, {format_duration(p)})" for w, s, p in sizing.candidates)
        compute = (f"--supernet-budget {format_duration(sizing.budget_s)} on the torch device `{sizing.device}`: "
                   f"{sizing.step_s:.3g} s per training step of the largest sub-network at width {sizing.width} "
                   f"(measured {sizing.measured_at}, batch {sizing.batch_size}, warm-up step excluded; "
                   f"smallest sub-network {sizing.small_step_s:.3g} s), training predicted "
                   f"{format_duration(sizing.predicted_s)} ({sizing.epochs_largest} + {sizing.epochs_elastic} epochs x "
                   f"{sizing.steps_per_epoch} steps of batch {sizing.batch_size}; per-epoch validation not counted); "
                   f"{sizing.stop}. Measured widths (per-step time, predicted training): {cands}. Measured once "
                   "when the run started and recorded (`settings.supernet.sizing`); resuming reuses it")
    elif st.time_budget_s is not None:
        compute = (f"--supernet-budget {format_duration(st.time_budget_s)}, sized to width {st.budget_width} "
                   "(the measurement is not in this run's record)")
    else:
        compute = (f"the CPU default: no time budget; the largest sub-network may need at most "
                   f"{st.macs_budget / 1e6:g} M MACs per image (`--supernet-budget 30min` sizes the space from a "
                   "training time measured on this machine instead)")
    pct_b = cov["largest_bytes"] / cov["budget"]
    pct_c = cov["largest_bytes"] / cov["capacity"]
    lines = [
        "## Covered space: what the search can use of the chip",
        f"- compute budget of the supernet: {compute}.",
        f"- covered widths {list(prep.space.widths)}, {prep.space.min_units}-{prep.space.max_units} units.",
        f"- the largest covered network ({cov['units']} units x {cov['depth']} layers of {cov['width']} channels, "
        f"{cov['kernel']}x{cov['kernel']}) holds {cov['largest_bytes']:,} B of weights at 8 bits: {pct_b:.0%} of the "
        f"{cov['budget']:,} B budget and {pct_c:.0%} of the chip's {cov['capacity']:,} B weight memory.",
    ]
    if not cov["binds"]:
        lines.append(f"- the budget cannot bind on this machine: every network the search can propose fits it at 8 "
                     f"bits, so neither --budget nor the weight bit widths decide anything; {_fix_hint(cov, sizing)}.")
    else:
        lines.append("- networks above the budget at 8 bits are in the searched space: the budget and the weight bit "
                     "widths can decide.")
    lines.append(f"- the full ai8x space (widths up to {cov['full_widths'][-1]}, {cov['full_units']} units) reaches "
                 f"{cov['full_bytes']:,} B at 8 bits.")
    return "\n".join(lines) + "\n"


def coverage_line(prep: Any) -> str:
    """One line for the terminal: how much of the chip the covered space can use."""
    cov = chip_coverage(prep)
    if cov is None:
        return ""
    line = (f"covered space: its largest network holds {cov['largest_bytes']:,} B at 8 bits, "
            f"{cov['largest_bytes'] / cov['budget']:.0%} of the {cov['budget']:,} B budget "
            f"({cov['largest_bytes'] / cov['capacity']:.0%} of the chip's weight memory)")
    if not cov["binds"]:
        line += f"; the budget cannot bind on this machine: {_fix_hint(cov, _sizing_of(prep))}"
    return line


def _constraints(report: Any, budget: int, latency_limit: float | None) -> dict[str, float]:
    c = {
        "weight_bytes_over_budget": float(report.weight_bytes - budget),
        "device_violations": float(len(report.violations)),
        "layers_over_limit": float(report.layers - report.max_layers),
    }
    if latency_limit is not None:
        c["latency_over_limit_ms"] = float(report.latency_ms - latency_limit)
    return c


def _compact_report(rep: Any) -> dict[str, Any]:
    """The device figures kept per trial (JSON): the report without per-layer placements."""
    d = rep.to_dict()
    d.pop("placement", None)
    d.pop("assumptions", None)
    return d


def _check_trial(prep: Any, trial: Any) -> TrialCheck:
    """Sample an architecture on ``trial``, check it on the device, set constraints and user_attrs.

    Sets the constraints and the user_attrs ``arch``, ``feasible`` and ``device``; used by every
    backend so that trials look the same in the study.
    """
    arch = prep.space.sample(trial)
    arch_s = prep.space.format(arch)
    rep = prep.device.report(prep.space.network(arch))
    cons = _constraints(rep, prep.budget, prep.cfg.latency_ms)
    return record_check(prep, trial, arch_s, float(rep.latency_ms), cons, _compact_report(rep))


def _bits(widths: list[int]) -> str:
    return "/".join(str(b) for b in widths)


def _pareto_rows(trials: list[Any], prep: Any, nets_dir: Path) -> list[dict[str, Any]]:
    """Rebuild, re-check and save every Pareto-optimal feasible network; one row each."""
    rows: list[dict[str, Any]] = []
    for t in trials:
        arch = t.user_attrs["arch"]
        net = prep.space.network(arch)
        rep = prep.device.report(net)
        path = nets_dir / f"trial-{t.number:04d}.yaml"
        net.save(path)
        rows.append({
            "trial": t.number,
            "arch": arch,
            "estimate": float(t.values[0]),
            "estimate_metric": prep.record.metric,
            "latency_ms": rep.latency_ms,
            "cycles": rep.cycles,
            "weight_bytes": rep.weight_bytes,
            "weight_capacity_bytes": rep.weight_capacity_bytes,
            "bias_bytes": rep.bias_bytes,
            "layers": rep.layers,
            "bit_widths": _bits(net.bit_widths),
            "max_column": rep.max_column,
            "kernel_processor_columns": rep.kernel_processor_columns,
            "data_memory_bytes": rep.data_memory_bytes,
            "input_load_ms": rep.input_load_ms,
            "macs": rep.macs,
            "fits": rep.fits,
            "violations": len(rep.violations),
            "network_file": str(path.relative_to(prep.run_dir)),
            "device_report": rep.to_dict(),
        })
    return rows


def _md_table(rows: list[dict[str, Any]], metric: str, hw: Any) -> str:
    if not rows:
        return "_No feasible network yet: relax --budget or --latency, or run more --trials._\n"
    lines = [
        f"| trial | {metric} | latency ms | cycles | weight bytes (of {hw.weight_memory_bytes:,}) | layers | bit widths | kernel columns used (of {hw.kernel_columns:,}) | network file |",
        "|---:|---:|---:|---:|---:|---:|---|---:|---|",
    ]
    for r in rows:
        lines.append(
            f"| {r['trial']} | {r['estimate']:.4g} | {r['latency_ms']:.3f} | {r['cycles']:,} | {r['weight_bytes']:,} | "
            f"{r['layers']} | {r['bit_widths']} | {r['max_column']} | `{r['network_file']}` |"
        )
    return "\n".join(lines) + "\n"


def _report_md(prep: Any, rows: list[dict[str, Any]], trials: list[dict[str, Any]]) -> str:
    s = prep.record
    hw = prep.target.hardware
    d = prep.data
    n_feas = sum(t["feasible"] for t in trials)
    lat = f"{s.latency_ms:g} ms" if s.latency_ms is not None else "none"
    archs = "\n".join(f"- trial {r['trial']}: `{r['arch']}`" for r in rows) or "- (none)"
    journal = study_location(prep)
    if prep.cfg.storage is None:
        study_files = f"""- `study.journal`: the Optuna study (JournalStorage); open it with
  `optuna-dashboard {journal}`"""
    else:
        study_files = f"""- the Optuna study `{prep.name}` lives in the RDB `{journal}` (not in this folder); open it with
  `optuna-dashboard {journal}`"""
    return f"""# nas search: {prep.name}

Written {_dt.datetime.now(_dt.timezone.utc).strftime('%Y-%m-%d %H:%M UTC')}.

## Settings
- device: {s.device} (vendor rules, kernel placement and cycle model of `devices`)
- weight budget: {s.budget_bytes:,} B (the device's {hw.weight_memory_bytes:,} B and the kernel placement always apply)
- latency limit: {lat}
- search space: ai8x ({prep.space.min_units}-{prep.space.max_units} units of 1-{prep.space.max_depth} fused
  (max-pool ->) conv -> BN -> ReLU layers, widths {list(prep.space.widths)}, kernels {list(prep.space.kernels)},
  weight bits {list(prep.space.bits)}{', first conv and classifier 8-bit' if prep.space.first_last_8bit else ''};
  flattening linear classifier){bits_line(s)}
- trials completed: {len(trials)} ({n_feas} feasible); sampler: {prep.cfg.sampler} (seeded), constraints via
  `Trial.set_constraint`: weight bytes - budget, device rule violations, layers - {hw.max_layers}{', latency - limit' if s.latency_ms is not None else ''}

## Dataset
- {d.describe()}
- source: {d.source}
- licence: {d.licence}
- inputs scaled to the MAX78000 range [-1, 127/128] as ai8x-training's `normalize` does.

## Accuracy estimate: `{s.metric}`
Every estimate in this report (tables, `pareto.csv`/`pareto.json` column `estimate`, named in
`estimate_metric`, and the plot) is this one:
{prep.estimator.describe()}
{estimate_notes(prep)}
Train the chosen network with the vendor's QAT before deploying.

{coverage_md(prep)}
## Pareto front ({len(rows)} networks, feasible only, by latency)
{_md_table(rows, s.metric, hw)}
{prep.target.latency_source}; it excludes loading the input
({rows[0]['input_load_ms']:.3f} ms for this input under the stated CPU model) and unloading the output.
{'' if not rows else ''}
Architectures:
{archs}

Re-checked with the device model when this report was written: {sum(r['fits'] and r['violations'] == 0 and r['weight_bytes'] <= s.budget_bytes for r in rows)}
of {len(rows)} networks fit with no violation and at most {s.budget_bytes:,} weight bytes
(`nas device check {s.device} <file>` gives the same answer); the full device report of each is in
`pareto.json` (`device_report`).

## Files
- `pareto.csv`, `pareto.json`: the front with every figure of the device report (`arch` is the
  architecture string `nas qat` reads)
- `nets/`: the network description of each Pareto network (YAML)
- `trials.csv`: every completed trial (feasible or not, with its first violated rule)
- `pareto.png`: latency vs estimate; infeasible candidates grey
{study_files}

Re-running the same `nas search` command resumes this study (`--trials` counts all completed trials).
""" if rows else f"""# nas search: {prep.name}

No feasible network among {len(trials)} trials. Relax --budget or --latency, or run more --trials.

- dataset: {d.describe()} ({d.source}; {d.licence})
- accuracy estimate: `{s.metric}`: {prep.estimator.describe()}
{estimate_notes(prep)}- study: `{journal}` (open with `optuna-dashboard {journal}`)

{coverage_md(prep)}"""


class Ai8xTarget(Target):
    """An accelerator of the MAX78000 family searching the ``ai8x`` space.

    Args:
        device_name: the registered device of the chip (``max78000``); devices of its class
            (and subclasses: registered, calibrated boards) are searched with this target. The
            chip's figures are its :func:`search_spaces.ai8x_hardware` description.
        latency_source: the sentence of ``report.md`` saying where latency comes from.
    """

    space_name = "ai8x"
    spaces = ("ai8x",)
    csv_columns = CSV_COLUMNS
    net_suffix = ".yaml"
    space_implied = True

    def __init__(self, device_name: str, latency_source: str) -> None:
        self.device_name = device_name
        self.hardware = ai8x_hardware(device_name)
        self.latency_source = latency_source
        self.name = device_name  # type: ignore[misc]
        self.example_device = device_name

    def _device_class(self) -> type:
        from devices import get_device

        return type(get_device(self.device_name))

    def _device(self) -> Any:
        from devices import get_device

        return get_device(self.device_name)

    @property
    def weight_capacity(self) -> int:
        """The chip's whole weight memory in bytes."""
        return int(self.hardware.weight_memory_bytes)

    @property
    def part(self) -> str:
        """The chip's name as its vendor writes it (``MAX78000``)."""
        return str(self.hardware.part)

    @property
    def clock_mhz(self) -> float:
        """The chip's default CNN clock in MHz (the cycle model's latency is given at it)."""
        return float(self.hardware.clock_hz) / 1e6

    def accepts(self, device: Any) -> int:
        cls = self._device_class()
        return len(cls.__mro__) if isinstance(device, cls) else 0

    def rule_report(self, device: Any, network: Any) -> Any:
        return device.report(network)

    # ------------------------------------------------------------------ search set-up
    def check_options(self, cfg: Any, device: Any) -> tuple[str, float]:
        space_name = cfg.space if cfg.space is not None else self.space_name
        if space_name not in self.spaces:
            raise InputError(f"nas search cannot search space {space_name!r} on device {cfg.device!r}: "
                             f"{self.part} devices search the ai8x space")
        if cfg.latency_margin is not None:
            raise InputError(f"--latency-margin applies to phones, host-cpu and registered latency devices, not to "
                             f"{cfg.device!r} (its cycle model has no uncertainty)")
        if cfg.ram_bytes is not None:
            raise InputError("--ram applies to phones, host-cpu and registered latency devices, not to "
                             f"{cfg.device!r} (its data memory is checked by the device rules)")
        return space_name, 0.0

    def budget(self, cfg: Any, device: Any) -> int:
        # The chip's whole weight memory (its hardware description).
        return self.weight_capacity if cfg.budget_bytes is None else int(cfg.budget_bytes)

    def space_options(self, cfg: Any) -> tuple[dict[str, Any], bool]:
        options = dict(cfg.space_options)
        choose_bits = "bits" not in options
        # 1-bit weights are {-1, 0} on the MAX78000 (two's complement) and so is the bias (rounded at
        # the weight bits, as the vendor's quantize.py does). Every hidden layer of the ai8x space
        # reads the output of a ReLU (>= 0), so a 1-bit hidden layer's sums are never positive and it
        # outputs 0 for every input (benchmarks/results/vendor_roundtrip.md): the search refuses it.
        if 1 in options.get("bits", ()):
            raise InputError("--bits 1 cannot be searched: a 1-bit hidden layer outputs 0 for every input on the "
                             "MAX78000 (its weights and bias are in {-1, 0} and it reads a ReLU's output); use 2, 4 or 8, "
                             "e.g. --bits 2,4,8")
        options.setdefault("bits", MAX78000_DEFAULT_BITS)
        return options, choose_bits

    def make_space(self, space_name: str, data: Any, options: dict[str, Any]) -> Any:
        return get_space("ai8x", input_shape=data.input_shape, num_classes=data.num_classes, conv1d=data.conv1d,
                         hardware=self.hardware, **options)

    def choose_bits(self, space: Any, device: Any, budget: int, probe: Any, options: dict[str, Any],
                    data: Any) -> tuple[Any, str | None]:
        bits, note = auto_bits(probe, device, budget)
        if bits != space.bits:
            options["bits"] = bits
            space = self.make_space(self.space_name, data, options)
        return space, note

    def probe_space(self, space: Any, estimator: Any) -> Any:
        """The space the automatic bit choice checks: the supernet's covered widths when the
        estimate uses it."""
        return covered_space(space, estimator.supernet_settings())

    def supernet_record(self, estimator: Any, space: Any) -> SupernetRecord:
        return SupernetRecord(cache=str(estimator.cache_path), searched_widths=tuple(space.widths),
                              width_cap=estimator.cap_reason)

    def record_fields(self, cfg: Any, device: Any, budget: int, margin: float) -> dict[str, Any]:
        return {"budget_bytes": budget}

    sizes_supernet = True

    def coverage_line(self, prep: Any) -> str:
        """One line on how much of the chip the supernet's covered space can use ("" without it)."""
        return coverage_line(prep)

    # ------------------------------------------------------------------ trials and outputs
    def check_trial(self, prep: Any, trial: Any) -> TrialCheck:
        return _check_trial(prep, trial)

    def pareto_rows(self, trials: list[Any], prep: Any, nets_dir: Path) -> list[dict[str, Any]]:
        return _pareto_rows(trials, prep, nets_dir)

    def report_md(self, prep: Any, rows: list[dict[str, Any]], trials: list[dict[str, Any]]) -> str:
        return _report_md(prep, rows, trials)

    def plot_text(self, prep: Any, n_trials: int) -> tuple[str, str]:
        return (f"{prep.name}: {n_trials} trials, budget {prep.budget:,} B",
                f"{self.part} CNN latency, ms (vendor cycle model at {self.clock_mhz:g} MHz)")

    def front_table(self, prep: Any, front: list[dict[str, Any]]) -> tuple[list[str], list[list[str]]]:
        cols = [f"weight bytes of {self.weight_capacity:,}", "layers", "bit widths"]
        return cols, [[f"{r['weight_bytes']:,}", str(r["layers"]), r["bit_widths"]] for r in front]

    # ------------------------------------------------------------------ nas qat
    def qat_space(self, record: RunRecord) -> Any:
        c, h, w = record.data.input_shape
        return get_space("ai8x", input_shape=(c, h, w), num_classes=record.data.num_classes,
                         conv1d=record.data.conv1d, hardware=self.hardware, **dict(record.space_options))

    def network(self, space: Any, arch: str) -> Any:
        return space.network(arch)

    def to_quantised(self, model: Any, xs: tuple[Any, ...], cfg: Any) -> Any:
        from search_spaces import fold_bn

        fold_bn(model)
        model.set_quantize(True)
        return model

    def anneal_epochs(self, cfg: Any) -> int:
        return max(0, min(cfg.anneal_epochs, cfg.qat_epochs - 1))

    def device_figures(self, record: RunRecord, arch: str, network: Any = None) -> dict[str, Any]:
        from devices import get_device

        rep = get_device(record.device).report(network)
        return {"kind": self.device_name, "fits": rep.fits, "violations": rep.violations, "latency_ms": rep.latency_ms,
                "cycles": rep.cycles, "weight_bytes": rep.weight_bytes, "bias_bytes": rep.bias_bytes,
                "layers": rep.layers, "max_column": rep.max_column, "data_memory_bytes": rep.data_memory_bytes,
                "bit_widths": network.bit_widths}

    def export(self, model: Any, net: Any, out_dir: Path, *, record: RunRecord, data: Any, space: Any,
               network: Any) -> tuple[dict[str, Path], dict[str, Any], list[str], list[str]]:
        epochs = net.epochs + net.qat_epochs
        files = export_max78000(model, network, out_dir, name=net.name, dataset=data.name.upper().replace(".", "_"),
                                epoch=epochs, sample=data.x_test[0], device=self._device())
        return (files, {}, accelerator_card_lines(net.device, network, files, device=self._device()),
                vendor_commands(files, prefix=net.name, part=self.part))

    def size_text(self, figures: dict[str, Any]) -> str:
        return f"{figures['weight_bytes']:,} B"

    def qat_notes(self, q: dict[str, Any]) -> tuple[str, str, str]:
        anneal = min(q["anneal_epochs"], q["qat_epochs"] - 1)
        return ((f"; the first {anneal} anneal from float to quantised weights" if anneal > 0 else ""),
                (f"the vendor's {self.part} QAT (BN folded, per-layer power-of-two output shift from the "
                 "1.0 quantile of |w, b| (0.99 for 4-, 2- and 1-bit layers), weights at their searched bits "
                 "(1-bit: {-1, 0} as the vendor's formula gives), bias rounded and clamped at the layer's weight bits "
                 "(quantize.py), activations clamped to [-1, 127/128] and 8-bit; accuracies computed "
                 "exactly in the chip's integer arithmetic)"),
                f"the vendor's cycle model at {self.clock_mhz:g} MHz (CNN only)")


@register_target("max78000")
def _max78000() -> Ai8xTarget:
    return Ai8xTarget("max78000", latency_source=(
        "Latency is the vendor's CNN cycle estimate at 50 MHz (against board measurements of the vendor's\n"
        "four published networks: benchmarks/results/max78000_model.md)"))


@register_target("max78002")
def _max78002() -> Ai8xTarget:
    return Ai8xTarget("max78002", latency_source=(
        "Latency is the MAX78000's CNN cycle formula (the vendor's izer/latency.py) evaluated with the\n"
        f"MAX78002's device description at {ai8x_hardware('max78002').clock_hz / 1e6:g} MHz: the vendor's tool gives "
        "no MAX78002 estimate, so it is\n"
        "an extrapolation (each network's `device_report` in `pareto.json` lists the assumptions)"))
