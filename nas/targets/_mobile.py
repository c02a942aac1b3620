"""The target of the devices with predicted or measured latency (phones, host-cpu, registered
devices): the ``fbnet`` space, the latency bound mean + k x std, the analytic int8 size and
peak RAM, int8 QAT as onnxruntime computes it and the ONNX export."""

from __future__ import annotations

import datetime as _dt
import json
import math
from pathlib import Path
from typing import Any

from search_spaces import RAM_NOTE, SIZE_NOTE, InputError, fbnet_cost, get_space

from ..export import export_onnx_int8, onnx_agreement, onnx_card_lines
from ..record import RunRecord, SupernetRecord
from ..supernet import FBNET_SUPERNET_DEFAULTS
from ._base import (
    Target,
    TrialCheck,
    estimate_notes,
    record_check,
    register_target,
    study_location,
    supernet_files,
    torch_device_note,
)

__all__ = ["MobileTarget", "MOBILE_CSV_COLUMNS", "MOBILE_SPACES", "mobile_figures", "DEFAULT_LATENCY_MARGIN",
           "FBNET_NASWOT_BATCH"]

MOBILE_SPACES = ("fbnet",)
FBNET_NASWOT_BATCH = 32
DEFAULT_LATENCY_MARGIN = 1.645

MOBILE_CSV_COLUMNS = [
    "trial", "arch", "estimate", "estimate_metric", "latency_ms", "std_ms", "latency_bound_ms", "size_bytes", "weights", "biases",
    "peak_ram_bytes", "macs", "network_file",
]


def mobile_figures(prep: Any, arch_s: str) -> dict[str, Any]:
    """Latency (mean, std, bound = mean + k*std), int8 size and peak RAM of one fbnet architecture."""
    from search_spaces import fbnet_cost

    ms, std = prep.device.predict(prep.space_name, [arch_s], return_std=True)
    mean, sd = float(ms[0]), float(std[0])
    cost = fbnet_cost(prep.space.op_indices(arch_s), in_channels=prep.space.in_channels,
                      input_size=prep.space.input_size, num_classes=prep.space.num_classes)
    return {
        "latency_ms": mean,
        "std_ms": sd,
        "latency_bound_ms": mean + float(prep.record.latency_margin or 0.0) * sd,
        "latency_margin": float(prep.record.latency_margin or 0.0),
        **cost.to_dict(),
    }


def _check_mobile(prep: Any, trial: Any) -> TrialCheck:
    """:func:`check_trial` for latency-predicting devices: predicted/measured latency, analytic size and RAM."""
    arch_s = prep.space.format(prep.space.sample(trial))
    fig = mobile_figures(prep, arch_s)
    cons: dict[str, float] = {}
    if prep.budget >= 0:
        cons["size_bytes_over_budget"] = float(fig["size_bytes"] - prep.budget)
    if prep.ram is not None:
        cons["ram_bytes_over_limit"] = float(fig["peak_ram_bytes"] - prep.ram)
    if prep.cfg.latency_ms is not None:
        cons["latency_bound_over_limit_ms"] = float(fig["latency_bound_ms"] - prep.cfg.latency_ms)
    if not cons:
        cons["none"] = 0.0  # a study whose trials all carry constraints
    return record_check(prep, trial, arch_s, fig["latency_ms"], cons, fig)


def _pareto_rows(trials: list[Any], prep: Any, nets_dir: Path) -> list[dict[str, Any]]:
    """Pareto rows of a latency-predicting device: figures recomputed, one JSON file per network."""
    rows: list[dict[str, Any]] = []
    for t in trials:
        arch = t.user_attrs["arch"]
        fig = {**t.user_attrs.get("device", {})}
        if prep.device.kind != "measured":  # a re-measurement would differ from what the search saw
            fig = mobile_figures(prep, arch)
        path = nets_dir / f"trial-{t.number:04d}.json"
        row = {"trial": t.number, "arch": arch, "estimate": float(t.values[0]),
               "estimate_metric": prep.record.metric, **fig,
               "network_file": str(path.relative_to(prep.run_dir))}
        net = {"space": prep.space_name, "arch": arch, "device": prep.record.device,
               "in_channels": prep.space.in_channels, "input_size": prep.space.input_size,
               "num_classes": prep.space.num_classes, "metric": prep.record.metric, **row,
               "size_note": _size_note(), "ram_note": _ram_note()}
        tmp = path.with_name(path.name + ".tmp")
        tmp.write_text(json.dumps(net, indent=1))
        tmp.replace(path)
        rows.append(row)
    return rows


def _size_note() -> str:
    return SIZE_NOTE


def _ram_note() -> str:
    return RAM_NOTE


def _mobile_estimate_notes(prep: Any) -> str:
    if supernet_files(prep) is not None:
        return estimate_notes(prep)
    return torch_device_note(prep) + ("The network is the fbnet module of this space with int8 weights (per output channel) and 8-bit\n"
            "activations after the stem, every layer and the head. It ranks candidates; it is not an accuracy.\n"
            "It is the quick estimate (`--accuracy proxy`); the default `--accuracy supernet` scores sub-networks "
            "of the fbnet supernet instead, which ranked better than this one on 8x8 digits and within seed noise "
            "of it on MNIST 5k (benchmarks/results/supernet_fbnet_*.md compares both).\n")


def _mobile_md(prep: Any, rows: list[dict[str, Any]], trials: list[dict[str, Any]]) -> str:
    """report.md of a search on a latency-predicting device (fbnet space)."""
    s = prep.record
    d = prep.data
    k = float(s.latency_margin or 0.0)
    n_feas = sum(t["feasible"] for t in trials)
    src = {"measured": "measured on this machine with onnxruntime (median of timed rounds; std = IQR / 1.349)",
           "recorded": "the recorded latency table where the architecture is in it (std 0), else the "
                       "space's latency predictor adapted to this device on the table's 10 reference rows",
           "registered": "the space's latency predictor adapted to this device's registered samples"}.get(
        (s.device_kind or ""), "the device's predict(space, archs, return_std=True)")
    lat = (f"{s.latency_ms:g} ms, constraint mean + {k:g} x std <= limit"
           + (" (a one-sided 95% bound for a normal error)" if abs(k - 1.645) < 1e-9 else "")
           if s.latency_ms is not None else "none")
    budget = f"{s.budget_bytes:,} B" if s.budget_bytes is not None else "none"
    ram = f"{s.ram_bytes:,} B" if s.ram_bytes is not None else "none"
    if rows:
        lines = [f"| trial | {s.metric} | latency ms (mean) | std ms | mean + {k:g} std ms | int8 size B | "
                 "peak RAM B | MMACs | file |", "|---:|---:|---:|---:|---:|---:|---:|---:|---|"]
        for r in rows:
            lines.append(f"| {r['trial']} | {r['estimate']:.4g} | {r['latency_ms']:.3f} | {r['std_ms']:.3f} | "
                         f"{r['latency_bound_ms']:.3f} | {r['size_bytes']:,} | {r['peak_ram_bytes']:,} | "
                         f"{r['macs'] / 1e6:.1f} | `{r['network_file']}` |")
        table = "\n".join(lines) + "\n"
    else:
        table = "_No feasible network yet: relax --budget, --ram or --latency, or run more --trials._\n"
    archs = "\n".join(f"- trial {r['trial']}: `{r['arch']}`" for r in rows) or "- (none)"
    journal = study_location(prep)
    return f"""# nas search: {prep.name}

Written {_dt.datetime.now(_dt.timezone.utc).strftime('%Y-%m-%d %H:%M UTC')}.

## Settings
- device: {s.device} ({s.device_kind or ''}); latency from {src}
- search space: {prep.space_name} (22 FBNet inverted-residual layers, 9 candidate blocks each, HW-NAS-Bench
  CIFAR-100 macro-architecture), built for {prep.space.in_channels}x{prep.space.input_size}x{prep.space.input_size}
  inputs and {prep.space.num_classes} classes
- latency limit: {lat}
- int8 size limit (--budget): {budget}; size = {_size_note()}
- peak RAM limit (--ram): {ram}; RAM = {_ram_note()}
- trials completed: {len(trials)} ({n_feas} feasible); sampler: {prep.cfg.sampler} (seeded), constraints via
  `Trial.set_constraint`

Latency is that of the latency tables' network (3x32x32 input, 100 classes); size and RAM are
computed for the network built for this data (stem and classifier adapted).

## Dataset
- {d.describe()}
- source: {d.source}
- licence: {d.licence}

## Accuracy estimate: `{s.metric}`
{prep.estimator.describe()}
{_mobile_estimate_notes(prep)}
## Pareto front ({len(rows)} networks, feasible only, by mean latency)
{table}
Architectures:
{archs}

## Files
- `pareto.csv`, `pareto.json`: the front with every figure
- `nets/`: one JSON file per Pareto network (architecture string and its figures)
- `trials.csv`: every completed trial
- `pareto.png`: latency vs estimate; infeasible candidates grey
- study: `{journal}` (open with `optuna-dashboard {journal}`)
"""


class MobileTarget(Target):
    """A device that predicts or measures latency (``predict(space, archs, return_std=True)``),
    searching the ``fbnet`` space."""

    name = "mobile"
    space_name = "fbnet"
    spaces = MOBILE_SPACES
    csv_columns = MOBILE_CSV_COLUMNS
    net_suffix = ".json"
    example_device = "pixel3"

    def accepts(self, device: Any) -> int:
        return 0 if hasattr(device, "report") else 1  # accelerators have a rule checker (report)

    # ------------------------------------------------------------------ search set-up
    def check_options(self, cfg: Any, device: Any) -> tuple[str, float]:
        spaces = list(getattr(device, "spaces", []))
        usable = [s for s in spaces if s in MOBILE_SPACES]
        if cfg.space is None:
            if len(usable) != 1:
                raise InputError(
                    f"give --space for device {cfg.device!r}: nas search supports {', '.join(MOBILE_SPACES)}; "
                    f"the device has latency for {', '.join(spaces) or 'no space'}"
                )
            space_name = usable[0]
        else:
            space_name = cfg.space
        if space_name not in spaces or space_name not in MOBILE_SPACES:
            raise InputError(
                f"nas search cannot search space {space_name!r} on device {cfg.device!r}: "
                f"it searches {', '.join(usable) or 'none of its spaces'} there"
                + (f" (the device has latency for {', '.join(spaces)})" if spaces else "")
            )
        margin = DEFAULT_LATENCY_MARGIN if cfg.latency_margin is None else float(cfg.latency_margin)
        if not (math.isfinite(margin) and margin >= 0):
            raise InputError(f"invalid --latency-margin {cfg.latency_margin}: it must be a number >= 0 (e.g. 1.645)")
        return space_name, margin

    def budget(self, cfg: Any, device: Any) -> int:
        return -1 if cfg.budget_bytes is None else int(cfg.budget_bytes)  # -1: no size limit

    def estimator_options(self, est_key: str, options: dict[str, Any]) -> dict[str, Any]:
        if est_key == "supernet":
            for opt, flag in (("max_width", "--supernet-max-width"), ("time_budget_s", "--supernet-budget")):
                if options.get(opt) is not None:
                    raise InputError(f"{flag} applies to the MAX78000 ai8x space; the fbnet supernet covers "
                                     "every op of every layer")
            options = {**FBNET_SUPERNET_DEFAULTS, **options}
        if est_key == "naswot":
            options.setdefault("batch", FBNET_NASWOT_BATCH)  # keeps a NASWOT trial quick on one thread
        return options

    def space_options(self, cfg: Any) -> tuple[dict[str, Any], bool]:
        if "bits" in cfg.space_options:
            raise InputError(f"--bits applies to MAX78000 devices; {cfg.device!r} searches int8 "
                             f"{cfg.space or self.space_name} networks")
        return dict(cfg.space_options), False

    def make_space(self, space_name: str, data: Any, options: dict[str, Any]) -> Any:
        shape = tuple(int(v) for v in data.input_shape)
        if data.conv1d or len(shape) != 3 or shape[1] != shape[2] or shape[1] < 8:
            raise InputError(f"the fbnet space needs square images of at least 8x8 pixels, got input shape {shape}")
        return get_space(space_name, in_channels=shape[0], num_classes=data.num_classes, input_size=shape[1],
                         **options)

    def supernet_record(self, estimator: Any, space: Any) -> SupernetRecord:
        return SupernetRecord(cache=str(estimator.cache_path))

    def record_fields(self, cfg: Any, device: Any, budget: int, margin: float) -> dict[str, Any]:
        return {"budget_bytes": None if budget < 0 else budget, "ram_bytes": cfg.ram_bytes, "latency_margin": margin,
                "device_kind": str(getattr(device, "kind", ""))}

    # ------------------------------------------------------------------ trials and outputs
    def check_trial(self, prep: Any, trial: Any) -> TrialCheck:
        return _check_mobile(prep, trial)

    def pareto_rows(self, trials: list[Any], prep: Any, nets_dir: Path) -> list[dict[str, Any]]:
        return _pareto_rows(trials, prep, nets_dir)

    def report_md(self, prep: Any, rows: list[dict[str, Any]], trials: list[dict[str, Any]]) -> str:
        return _mobile_md(prep, rows, trials)

    def plot_text(self, prep: Any, n_trials: int) -> tuple[str, str]:
        return (f"{prep.name}: {n_trials} trials",
                f"{prep.record.device} latency, ms (mean; {prep.record.device_kind or ''})")

    def front_table(self, prep: Any, front: list[dict[str, Any]]) -> tuple[list[str], list[list[str]]]:
        cols = [f"mean+{prep.record.latency_margin:g}std ms", "int8 size B", "peak RAM B", "arch"]
        return cols, [[f"{r['latency_bound_ms']:.3f}", f"{r['size_bytes']:,}", f"{r['peak_ram_bytes']:,}", r["arch"]]
                      for r in front]

    # ------------------------------------------------------------------ nas qat
    def qat_space(self, record: RunRecord) -> Any:
        c, h, _ = record.data.input_shape
        return get_space(record.space, in_channels=c, num_classes=record.data.num_classes, input_size=h,
                         **dict(record.space_options))

    def to_quantised(self, model: Any, xs: tuple[Any, ...], cfg: Any) -> Any:
        from search_spaces import calibrate_int8, prepare_int8_qat

        dev = next(model.parameters()).device
        q = prepare_int8_qat(model).to(dev)  # its new quantisation parameters are made on the CPU
        # activation ranges from a few training batches (calibrate_int8 reads the first 8)
        return calibrate_int8(q, xs[0][: 8 * cfg.batch_size].to(dev), cfg.batch_size)

    def device_figures(self, record: RunRecord, arch: str, network: Any = None) -> dict[str, Any]:
        from devices import get_device

        dev = get_device(record.device)
        space = self.qat_space(record)
        ms, std = dev.predict(record.space, [arch], return_std=True)
        cost = fbnet_cost(space.op_indices(arch), in_channels=space.in_channels, input_size=space.input_size,
                          num_classes=space.num_classes)
        out = {"kind": "phone", "latency_ms": float(ms[0]), "std_ms": float(std[0]), **cost.to_dict()}
        budget, ram, lat = record.budget_bytes, record.ram_bytes, record.latency_ms
        k = float(record.latency_margin or 0.0)
        viol = []
        if budget is not None and out["size_bytes"] > budget:
            viol.append(f"int8 size {out['size_bytes']:,} B is over the budget {budget:,} B")
        if ram is not None and out["peak_ram_bytes"] > ram:
            viol.append(f"peak RAM {out['peak_ram_bytes']:,} B is over the limit {ram:,} B")
        if lat is not None and out["latency_ms"] + k * out["std_ms"] > lat:
            viol.append(f"latency bound {out['latency_ms'] + k * out['std_ms']:.3f} ms is over the limit {lat} ms")
        out.update(fits=not viol, violations=viol)
        return out

    def export(self, model: Any, net: Any, out_dir: Path, *, record: RunRecord, data: Any, space: Any,
               network: Any) -> tuple[dict[str, Path], dict[str, Any], list[str], list[str]]:
        files = {"onnx": export_onnx_int8(model, out_dir / "model.onnx", data.input_shape)}
        n_test = int(net.extra.get("n_test") or len(data.y_test))
        extra = {"onnx": onnx_agreement(model, files["onnx"], data.x_test[:n_test], data.y_test[:n_test])}
        net.extra["onnx"] = extra["onnx"]
        desc = {"space": record.space, "arch": net.arch, "device": record.device,
                "in_channels": space.in_channels, "input_size": space.input_size, "num_classes": space.num_classes}
        files["network"] = out_dir / "network.json"
        files["network"].write_text(json.dumps(desc, indent=1))
        return files, extra, onnx_card_lines(record.device, net.device, extra["onnx"]), []

    def size_text(self, figures: dict[str, Any]) -> str:
        return f"{figures['size_bytes']:,} B int8"

    def qat_notes(self, q: dict[str, Any]) -> tuple[str, str, str]:
        return ("",
                ("int8 per-channel weights on the 7-bit range [-63, 63] (safe from int16 pair saturation "
                 "on x86 CPUs without VNNI), int8 per-tensor activations, int32 biases at input x weight "
                 "scale, BN folded"),
                "the device's predicted mean latency")


register_target("mobile")(MobileTarget)
