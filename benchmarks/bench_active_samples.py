"""Active extra samples (``nas device kit --extra K``) against random extra samples.

For each space and HELP meta-test device of the vendored tables: the shipped predictor is
adapted on the 10 references plus K extra architectures (K = 0, 10, 40: 10, 20 and 50 samples
in all), the extras chosen either by :func:`predictors.select_extra` (the kit's choice: the
predictor's posterior uncertainty, before any measurement) or uniformly at random, both from
the same candidate pool (``--pool`` random rows of HELP's train pool, drawn per seed; the
table's latencies stand in for the user's measurements). Scored on the device's HELP query rows
(band-trimmed, never candidates): Spearman and the share of predictions within +-10%, mean over
``--seeds`` seeds.

    python benchmarks/bench_active_samples.py [--seeds 3] [--pool 1000] [--out FILE.md]
"""

from __future__ import annotations

import argparse
import os
import time

import numpy as np


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--spaces", default="nasbench201,fbnet,ofa_mbv3")
    p.add_argument("--devices", type=int, default=3, help="meta-test devices per space (at most)")
    p.add_argument("--seeds", type=int, default=3)
    p.add_argument("--pool", type=int, default=1000)
    p.add_argument("--out")
    args = p.parse_args(argv)

    import predictors

    t0 = time.perf_counter()
    lines = [
        "# Active vs random extra samples (`nas device kit --extra K`)",
        "",
        f"Made by `python benchmarks/bench_active_samples.py --seeds {args.seeds} --pool {args.pool}`. "
        "Shipped predictors; HELP meta-test devices of the vendored tables (a bank of real devices "
        "from this machine does not exist yet). Samples = the 10 references + K extras from the same "
        f"candidate pool ({args.pool} random rows of HELP's train pool per seed): `active` = the kit's "
        "choice (`predictors.select_extra`, before any latency is known), `random` = uniform. Scored "
        "on the device's band-trimmed HELP query rows; mean over seeds.",
        "",
        "| space | device | samples | Spearman active | Spearman random | within +-10% active | within +-10% random |",
        "|---|---|---|---|---|---|---|",
    ]
    ks = (0, 10, 40)
    for space in args.spaces.split(","):
        pred = predictors.load(space)
        table = predictors.load_latency_table(space)
        devs = table.splits["meta_test"][: args.devices]
        refs = list(table.ref_archs)
        ref_idx = set(int(i) for i in table.ref_index)
        res: dict[tuple[str, int, str], list[tuple[float, float]]] = {}
        for seed in range(args.seeds):
            rng = np.random.default_rng(seed)
            rows = np.array([i for i in range(table.n_train_pool) if i not in ref_idx])
            pool = rng.choice(rows, size=min(args.pool, len(rows)), replace=False)
            pool_archs = [table.archs[i] for i in pool]
            active = predictors.select_extra(pred, max(ks), pool=pool_archs)
            pos = {a if isinstance(a, str) else repr(a): i for a, i in zip(pool_archs, pool)}
            act_rows = [pos[a if isinstance(a, str) else repr(a)] for a in active]
            rnd_rows = list(rng.permutation(pool)[: max(ks)])
            for d in devs:
                y = table.device(d)
                _, query = predictors.protocol_split(table, d)
                q_archs = [table.archs[i] for i in query]
                for k in ks:
                    for how, extra in (("active", act_rows[:k]), ("random", rnd_rows[:k])):
                        if k == 0 and how == "random":
                            continue
                        archs = refs + [table.archs[i] for i in extra]
                        lat = np.concatenate([y[table.ref_index], y[np.asarray(extra, dtype=int)]])
                        m = predictors.all_metrics(y[query], pred.adapt(archs, lat).predict(q_archs))
                        res.setdefault((d, k, how), []).append((m["spearman"], m["within10"]))
            print(f"{space} seed {seed} done ({time.perf_counter() - t0:.0f} s)", flush=True)
        for d in devs:
            for k in ks:
                a = np.mean(res[(d, k, "active")], 0)
                r = np.mean(res[(d, k, "random")], 0) if k else a
                line = (f"| {space} | {d} | {10 + k} | {a[0]:.3f} | {r[0]:.3f} | {a[1]:.1f}% | {r[1]:.1f}% |")
                lines.append(line)
                print(line, flush=True)
    load = os.getloadavg()
    lines += ["", f"Wall time {time.perf_counter() - t0:.0f} s; load average at the end {load[0]:.2f} {load[1]:.2f} "
              f"{load[2]:.2f} (shared machine; does not affect these figures)."]
    text = "\n".join(lines) + "\n"
    print(text)
    if args.out:
        with open(args.out, "w") as f:
            f.write(text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
