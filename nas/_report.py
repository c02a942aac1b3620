"""Outputs of a search: Pareto CSV/JSON, network files, the plot and report.md."""

from __future__ import annotations

import csv
import datetime as _dt
import json
import re
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import optuna

    from ._search import _Prepared

__all__ = ["write_outputs", "pareto_rows", "CSV_COLUMNS", "MOBILE_CSV_COLUMNS"]

CSV_COLUMNS = [
    "trial", "arch", "estimate", "estimate_metric", "latency_ms", "cycles", "weight_bytes", "weight_capacity_bytes",
    "bias_bytes", "layers", "bit_widths", "max_column", "kernel_processor_columns", "data_memory_bytes",
    "input_load_ms", "macs", "fits", "violations", "network_file",
]
MOBILE_CSV_COLUMNS = [
    "trial", "arch", "estimate", "estimate_metric", "latency_ms", "std_ms", "latency_bound_ms", "size_bytes", "weights", "biases",
    "peak_ram_bytes", "macs", "network_file",
]


def _bits(widths: list[int]) -> str:
    return "/".join(str(b) for b in widths)


def _front_trials(study: optuna.Study) -> list[optuna.trial.FrozenTrial]:
    """The feasible, estimated Pareto-optimal trials, by latency (then estimate, number)."""
    best = [t for t in study.best_trials if t.user_attrs.get("feasible") and t.user_attrs.get("estimated")]
    return sorted(best, key=lambda t: (t.values[1], -t.values[0], t.number))


def pareto_rows(study: optuna.Study, prep: _Prepared, nets_dir: Path) -> list[dict[str, Any]]:
    """Rebuild, re-check and save every Pareto-optimal feasible network; one row each."""
    rows: list[dict[str, Any]] = []
    for t in _front_trials(study):
        arch = t.user_attrs["arch"]
        net = prep.space.network(arch)
        rep = prep.device.report(net)
        path = nets_dir / f"trial-{t.number:04d}.yaml"
        net.save(path)
        rows.append({
            "trial": t.number,
            "arch": arch,
            "estimate": float(t.values[0]),
            "estimate_metric": prep.settings["metric"],
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


def mobile_pareto_rows(study: optuna.Study, prep: _Prepared, nets_dir: Path) -> list[dict[str, Any]]:
    """Pareto rows of a latency-predicting device: figures recomputed, one JSON file per network."""
    from ._search import mobile_figures

    rows: list[dict[str, Any]] = []
    for t in _front_trials(study):
        arch = t.user_attrs["arch"]
        fig = {**t.user_attrs.get("device", {})}
        if prep.device.kind != "measured":  # a re-measurement would differ from what the search saw
            fig = mobile_figures(prep, arch)
        path = nets_dir / f"trial-{t.number:04d}.json"
        row = {"trial": t.number, "arch": arch, "estimate": float(t.values[0]),
               "estimate_metric": prep.settings["metric"], **fig,
               "network_file": str(path.relative_to(prep.run_dir))}
        net = {"space": prep.space_name, "arch": arch, "device": prep.settings["device"],
               "in_channels": prep.space.in_channels, "input_size": prep.space.input_size,
               "num_classes": prep.space.num_classes, "metric": prep.settings["metric"], **row,
               "size_note": _size_note(), "ram_note": _ram_note()}
        tmp = path.with_name(path.name + ".tmp")
        tmp.write_text(json.dumps(net, indent=1))
        tmp.replace(path)
        rows.append(row)
    return rows


def _size_note() -> str:
    from search_spaces._fbnet_cost import SIZE_NOTE

    return SIZE_NOTE


def _ram_note() -> str:
    from search_spaces._fbnet_cost import RAM_NOTE

    return RAM_NOTE


def _trial_rows(study: optuna.Study) -> list[dict[str, Any]]:
    from optuna.trial import TrialState

    out = []
    for t in study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,)):
        dev = t.user_attrs.get("device", {})
        out.append({
            "trial": t.number,
            "arch": t.user_attrs.get("arch"),
            "feasible": bool(t.user_attrs.get("feasible")),
            "estimate": t.user_attrs.get("estimate"),
            "latency_ms": float(t.values[1]),
            "weight_bytes": dev.get("weight_bytes", dev.get("size_bytes")),
            "layers": dev.get("layers"),
            "violations": len(dev.get("violations", [])),
            "constraints": json.dumps(t.constraints, sort_keys=True),
            "first_violation": (dev.get("violations") or [""])[0],
        })
    return out


def _write_csv(path: Path, rows: list[dict[str, Any]], columns: list[str]) -> None:
    tmp = path.with_name(path.name + ".tmp")
    with tmp.open("w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=columns, extrasaction="ignore")
        w.writeheader()
        for r in rows:
            w.writerow({k: (f"{v:.6g}" if isinstance(v, float) else v) for k, v in r.items() if k in columns})
    tmp.replace(path)


def _plot(path: Path, trials: list[dict[str, Any]], pareto: list[dict[str, Any]], metric: str, title: str,
          xlabel: str = "MAX78000 CNN latency, ms (vendor cycle model at 50 MHz)") -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.ticker import LogLocator, NullFormatter, ScalarFormatter
    from matplotlib.transforms import blended_transform_factory

    fig, ax = plt.subplots(figsize=(7.5, 4.8), dpi=120)
    feas = [t for t in trials if t["feasible"] and t["estimate"] is not None]
    inf_est = [t for t in trials if not t["feasible"] and t["estimate"] is not None]
    inf_none = [t for t in trials if not t["feasible"] and t["estimate"] is None]
    if inf_est:
        ax.scatter([t["latency_ms"] for t in inf_est], [t["estimate"] for t in inf_est], s=18, c="0.75",
                   marker="x", label=f"infeasible ({len(inf_est)})")
    if feas:
        ax.scatter([t["latency_ms"] for t in feas], [t["estimate"] for t in feas], s=20, c="tab:blue",
                   alpha=0.7, label=f"feasible ({len(feas)})")
    if pareto:
        xs = [r["latency_ms"] for r in pareto]
        ys = [r["estimate"] for r in pareto]
        ax.step(xs, ys, where="post", c="tab:red", lw=1.2)
        ax.scatter(xs, ys, s=46, facecolors="none", edgecolors="tab:red", lw=1.5, label=f"Pareto front ({len(pareto)})")
    if inf_none:
        tr = blended_transform_factory(ax.transData, ax.transAxes)
        ax.scatter([t["latency_ms"] for t in inf_none], [0.02] * len(inf_none), transform=tr, s=14, c="0.75",
                   marker="|", label=f"infeasible, not estimated ({len(inf_none)})")
    ax.set_xscale("log")
    ax.xaxis.set_major_formatter(ScalarFormatter())
    ax.xaxis.set_minor_formatter(NullFormatter())
    ax.xaxis.set_major_locator(LogLocator(base=10, subs=(1.0, 2.0, 5.0)))
    ax.set_xlabel(xlabel)
    ax.set_ylabel(metric)
    ax.set_title(title, fontsize=10)
    ax.grid(alpha=0.3, which="both")
    ax.legend(fontsize=8, loc="best")
    fig.tight_layout()
    tmp = path.with_name(path.stem + ".tmp.png")
    fig.savefig(tmp)
    plt.close(fig)
    tmp.replace(path)


def _md_table(rows: list[dict[str, Any]], metric: str) -> str:
    if not rows:
        return "_No feasible network yet: relax --budget or --latency, or run more --trials._\n"
    lines = [
        f"| trial | {metric} | latency ms | cycles | weight bytes (of 442,368) | layers | bit widths | kernel columns used (of 768) | network file |",
        "|---:|---:|---:|---:|---:|---:|---|---:|---|",
    ]
    for r in rows:
        lines.append(
            f"| {r['trial']} | {r['estimate']:.4g} | {r['latency_ms']:.3f} | {r['cycles']:,} | {r['weight_bytes']:,} | "
            f"{r['layers']} | {r['bit_widths']} | {r['max_column']} | `{r['network_file']}` |"
        )
    return "\n".join(lines) + "\n"


def _study_location(prep: _Prepared) -> str:
    """Where the study lives: the run's journal file, or the RDB URL with any password masked."""
    if prep.cfg.storage is None:
        return str(prep.run_dir / "study.journal")
    return re.sub(r"(://[^:/@]+):[^@]*@", r"\1:***@", prep.cfg.storage)


def supernet_files(prep: _Prepared) -> dict[str, Any] | None:
    """The supernet's cache folder, training log and last log row (None for other estimates)."""
    info = prep.settings.get("supernet")
    if not info:
        return None
    path = Path(info["cache"])
    log = path / "train_log.csv"
    last: dict[str, Any] = {}
    if log.is_file():
        with log.open() as f:
            rows = list(csv.DictReader(f))
        last = rows[-1] if rows else {}
    return {"cache": str(path), "train_log": str(log), "last_epoch": last,
            "searched_widths": info.get("searched_widths"), "width_cap": info.get("width_cap")}


def _bits_line(settings: dict[str, Any]) -> str:
    note = settings.get("bits_auto")
    return f"\n- weight bits searched: {note}" if note else ""


def _estimate_notes(prep: _Prepared) -> str:
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
           f"{last.get('seconds')} s of training." if last else "")
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


def _report_md(prep: _Prepared, study: optuna.Study, rows: list[dict[str, Any]], trials: list[dict[str, Any]]) -> str:
    s = prep.settings
    d = prep.data
    n_feas = sum(t["feasible"] for t in trials)
    lat = f"{s['latency_ms']:g} ms" if s["latency_ms"] is not None else "none"
    archs = "\n".join(f"- trial {r['trial']}: `{r['arch']}`" for r in rows) or "- (none)"
    journal = _study_location(prep)
    if prep.cfg.storage is None:
        study_files = f"""- `study.journal`: the Optuna study (JournalStorage); open it with
  `optuna-dashboard {journal}`"""
    else:
        study_files = f"""- the Optuna study `{prep.name}` lives in the RDB `{journal}` (not in this folder); open it with
  `optuna-dashboard {journal}`"""
    return f"""# nas search: {prep.name}

Written {_dt.datetime.now(_dt.timezone.utc).strftime('%Y-%m-%d %H:%M UTC')}.

## Settings
- device: {s['device']} (vendor rules, kernel placement and cycle model of `devices`)
- weight budget: {s['budget_bytes']:,} B (the device's 442,368 B and the kernel placement always apply)
- latency limit: {lat}
- search space: ai8x ({prep.space.min_units}-{prep.space.max_units} units of 1-{prep.space.max_depth} fused
  (max-pool ->) conv -> BN -> ReLU layers, widths {list(prep.space.widths)}, kernels {list(prep.space.kernels)},
  weight bits {list(prep.space.bits)}{', first conv and classifier 8-bit' if prep.space.first_last_8bit else ''};
  flattening linear classifier){_bits_line(s)}
- trials completed: {len(trials)} ({n_feas} feasible); sampler: {prep.cfg.sampler} (seeded), constraints via
  `Trial.set_constraint`: weight bytes - budget, device rule violations, layers - 32{', latency - limit' if s['latency_ms'] is not None else ''}

## Dataset
- {d.describe()}
- source: {d.source}
- licence: {d.licence}
- inputs scaled to the MAX78000 range [-1, 127/128] as ai8x-training's `normalize` does.

## Accuracy estimate: `{s['metric']}`
Every estimate in this report (tables, `pareto.csv`/`pareto.json` column `estimate`, named in
`estimate_metric`, and the plot) is this one:
{prep.estimator.describe()}
{_estimate_notes(prep)}
Train the chosen network with the vendor's QAT before deploying.

## Pareto front ({len(rows)} networks, feasible only, by latency)
{_md_table(rows, s['metric'])}
Latency is the vendor's CNN cycle estimate at 50 MHz (within 0.5% of board measurements for the
vendor's four published networks); it excludes loading the input
({rows[0]['input_load_ms']:.3f} ms for this input under the stated CPU model) and unloading the output.
{'' if not rows else ''}
Architectures:
{archs}

Re-checked with the device model when this report was written: {sum(r['fits'] and r['violations'] == 0 and r['weight_bytes'] <= s['budget_bytes'] for r in rows)}
of {len(rows)} networks fit with no violation and at most {s['budget_bytes']:,} weight bytes
(`nas device check {s['device']} <file>` gives the same answer); the full device report of each is in
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
- accuracy estimate: `{s['metric']}`: {prep.estimator.describe()}
{_estimate_notes(prep)}- study: `{journal}` (open with `optuna-dashboard {journal}`)
"""


def _mobile_estimate_notes(prep: _Prepared) -> str:
    if supernet_files(prep) is not None:
        return _estimate_notes(prep)
    return ("The network is the fbnet module of this space with int8 weights (per output channel) and 8-bit\n"
            "activations after the stem, every layer and the head. It ranks candidates; it is not an accuracy.\n"
            "It is the quick estimate (`--accuracy proxy`); the default `--accuracy supernet` scores sub-networks "
            "of the fbnet supernet instead, which ranked better than this one on 8x8 digits and within seed noise "
            "of it on MNIST 5k (benchmarks/results/supernet_fbnet_*.md compares both).\n")


def _mobile_md(prep: _Prepared, rows: list[dict[str, Any]], trials: list[dict[str, Any]]) -> str:
    """report.md of a search on a latency-predicting device (fbnet space)."""
    s = prep.settings
    d = prep.data
    k = s["latency_margin"]
    n_feas = sum(t["feasible"] for t in trials)
    src = {"measured": "measured on this machine with onnxruntime (median of timed rounds; std = IQR / 1.349)",
           "recorded": "the recorded latency table where the architecture is in it (std 0), else the "
                       "space's latency predictor adapted to this device on the table's 10 reference rows",
           "registered": "the space's latency predictor adapted to this device's registered samples"}.get(
        s.get("device_kind", ""), "the device's predict(space, archs, return_std=True)")
    lat = (f"{s['latency_ms']:g} ms, constraint mean + {k:g} x std <= limit"
           + (" (a one-sided 95% bound for a normal error)" if abs(k - 1.645) < 1e-9 else "")
           if s["latency_ms"] is not None else "none")
    budget = f"{s['budget_bytes']:,} B" if s["budget_bytes"] is not None else "none"
    ram = f"{s['ram_bytes']:,} B" if s["ram_bytes"] is not None else "none"
    if rows:
        lines = [f"| trial | {s['metric']} | latency ms (mean) | std ms | mean + {k:g} std ms | int8 size B | "
                 "peak RAM B | MMACs | file |", "|---:|---:|---:|---:|---:|---:|---:|---:|---|"]
        for r in rows:
            lines.append(f"| {r['trial']} | {r['estimate']:.4g} | {r['latency_ms']:.3f} | {r['std_ms']:.3f} | "
                         f"{r['latency_bound_ms']:.3f} | {r['size_bytes']:,} | {r['peak_ram_bytes']:,} | "
                         f"{r['macs'] / 1e6:.1f} | `{r['network_file']}` |")
        table = "\n".join(lines) + "\n"
    else:
        table = "_No feasible network yet: relax --budget, --ram or --latency, or run more --trials._\n"
    archs = "\n".join(f"- trial {r['trial']}: `{r['arch']}`" for r in rows) or "- (none)"
    journal = _study_location(prep)
    return f"""# nas search: {prep.name}

Written {_dt.datetime.now(_dt.timezone.utc).strftime('%Y-%m-%d %H:%M UTC')}.

## Settings
- device: {s['device']} ({s.get('device_kind', '')}); latency from {src}
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

## Accuracy estimate: `{s['metric']}`
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


def write_outputs(study: optuna.Study, prep: _Prepared) -> dict[str, Path]:
    """Write every output file of a run; returns their paths by kind."""
    run = prep.run_dir
    nets = run / "nets"
    nets.mkdir(exist_ok=True)
    rows = mobile_pareto_rows(study, prep, nets) if prep.mobile else pareto_rows(study, prep, nets)
    keep = {Path(r["network_file"]).name for r in rows}
    for stale in [*nets.glob("trial-*.yaml"), *nets.glob("trial-*.json")]:  # left from an earlier front of a resumed study
        if stale.name not in keep:
            stale.unlink()
    trials = _trial_rows(study)
    metric = prep.settings["metric"]
    files = {
        "pareto_csv": run / "pareto.csv",
        "pareto_json": run / "pareto.json",
        "trials_csv": run / "trials.csv",
        "plot": run / "pareto.png",
        "report": run / "report.md",
        "nets": nets,
    }
    if prep.cfg.storage is None:
        files["journal"] = run / "study.journal"
    csv_rows = [{**r, "estimate": r["estimate"]} for r in rows]
    _write_csv(files["pareto_csv"], csv_rows, MOBILE_CSV_COLUMNS if prep.mobile else CSV_COLUMNS)
    _write_csv(files["trials_csv"], trials, list(trials[0].keys()) if trials else ["trial"])
    payload = {"name": prep.name, "metric": metric,
               "estimate": {"metric": metric, "description": prep.estimator.describe(),
                            "supernet": supernet_files(prep)},
               "settings": prep.settings, "pareto": rows}
    tmp = files["pareto_json"].with_name("pareto.json.tmp")
    tmp.write_text(json.dumps(payload, indent=1))
    tmp.replace(files["pareto_json"])
    if prep.mobile:
        title = f"{prep.name}: {len(trials)} trials"
        _plot(files["plot"], trials, rows, metric, title,
              xlabel=f"{prep.settings['device']} latency, ms (mean; {prep.settings.get('device_kind', '')})")
        text = _mobile_md(prep, rows, trials)
    else:
        title = f"{prep.name}: {len(trials)} trials, budget {prep.budget:,} B"
        _plot(files["plot"], trials, rows, metric, title)
        text = _report_md(prep, study, rows, trials)
    tmp = files["report"].with_name("report.md.tmp")
    tmp.write_text(text)
    tmp.replace(files["report"])
    return files
