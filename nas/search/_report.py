"""Outputs of a search: Pareto CSV/JSON, network files, the plot and report.md."""

from __future__ import annotations

import csv
import json
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..targets import supernet_files
from ._config import SearchResult
from ._study import Prepared, Tally

if TYPE_CHECKING:
    import optuna

__all__ = ["write_outputs", "finish"]


def _front_trials(study: optuna.Study) -> list[optuna.trial.FrozenTrial]:
    """The feasible, estimated Pareto-optimal trials, by latency (then estimate, number)."""
    best = [t for t in study.best_trials if t.user_attrs.get("feasible") and t.user_attrs.get("estimated")]
    return sorted(best, key=lambda t: (t.values[1], -t.values[0], t.number))


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
          xlabel: str) -> None:
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


def write_outputs(study: optuna.Study, prep: Prepared) -> dict[str, Path]:
    """Write every output file of a run; returns their paths by kind."""
    run = prep.run_dir
    nets = run / "nets"
    nets.mkdir(exist_ok=True)
    rows = prep.target.pareto_rows(_front_trials(study), prep, nets)
    keep = {Path(r["network_file"]).name for r in rows}
    for stale in [*nets.glob("trial-*.yaml"), *nets.glob("trial-*.json")]:  # left from an earlier front of a resumed study
        if stale.name not in keep:
            stale.unlink()
    trials = _trial_rows(study)
    metric = prep.record.metric
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
    _write_csv(files["pareto_csv"], csv_rows, prep.target.csv_columns)
    _write_csv(files["trials_csv"], trials, list(trials[0].keys()) if trials else ["trial"])
    payload = {"name": prep.name, "metric": metric,
               "estimate": {"metric": metric, "description": prep.estimator.describe(),
                            "supernet": supernet_files(prep)},
               "settings": prep.record.to_dict(), "pareto": rows}
    tmp = files["pareto_json"].with_name("pareto.json.tmp")
    tmp.write_text(json.dumps(payload, indent=1))
    tmp.replace(files["pareto_json"])
    title, xlabel = prep.target.plot_text(prep, len(trials))
    _plot(files["plot"], trials, rows, metric, title, xlabel=xlabel)
    text = prep.target.report_md(prep, rows, trials)
    tmp = files["report"].with_name("report.md.tmp")
    tmp.write_text(text)
    tmp.replace(files["report"])
    return files


def finish(study: Any, prep: Prepared, tally: Tally, *, n_new: int, seconds: float, device_seconds: float,
            estimate_seconds: float) -> SearchResult:
    """Write the run's outputs and build the result."""
    from optuna.trial import TrialState

    files = write_outputs(study, prep)
    n_complete = len(study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,)))
    pareto = json.loads(files["pareto_json"].read_text())["pareto"]
    return SearchResult(
        run_dir=prep.run_dir, name=prep.name, metric=prep.estimator.metric_name(), pareto=pareto,
        n_complete=n_complete, n_feasible=tally.feasible, n_new=n_new, seconds=seconds,
        device_seconds=device_seconds, estimate_seconds=estimate_seconds, resumed=prep.resumed,
        settings=prep.record.to_dict(), record=prep.record, files=files,
    )
