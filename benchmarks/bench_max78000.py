"""MAX78000 device-model benchmark: how many networks per second ``report()`` checks.

Times the full check (rules, kernel and bias placement, data memory, cycle model) and the
latency alone, on the four board-measured vendor networks (tests/devices/data) and on random
ai8x-like networks (sequential conv2d stacks of 1..16 layers, 1x1/3x3 kernels, optional 2x2
pooling, 1/2/4/8-bit weights, sometimes a flatten classifier). Also prints the model's error
against the board measurements. Prints figures only; nothing is asserted.

    python benchmarks/bench_max78000.py [--random 2000] [--repeat 5] [--seed 0]
"""

from __future__ import annotations

import argparse
import platform
import random
import time
from pathlib import Path

from devices import MAX78000
from search_spaces import Layer, Network

DATA = Path(__file__).resolve().parents[1] / "tests" / "devices" / "data"
MEASURED_US = {"mnist": 1410, "old-cifar-10": 1712, "old-cifar-100": 2593, "kws20_v3": 1442}


def random_network(rng: random.Random) -> Network:
    """A well-formed ai8x-like network (it may or may not fit the MAX78000)."""
    c = rng.choice([1, 3, 3, 16, 64])
    h = w = rng.choice([16, 28, 32, 48, 64])
    shape = (c, h, w)
    layers: list[Layer] = []
    for i in range(rng.randint(1, 16)):
        cout = rng.choice([8, 16, 24, 32, 48, 64, 96, 128, 192, 256])
        k = rng.choice([1, 3, 3])
        pool = 2 if (h >= 4 and rng.random() < 0.35) else 1
        hp = (h - pool) // pool + 1
        pad = 0 if k == 1 else rng.randint(max(0, -(-(3 - hp) // 2)), 1)
        layer = Layer.from_dict(dict(op="conv2d", in_channels=c, out_channels=cout, in_dim=[h, w],
                                     kernel=k, pad=pad, pool=pool, weight_bits=rng.choice([2, 4, 8, 8])), i)
        layers.append(layer)
        c, (h, w) = cout, layer.out_dim
    if c * h * w <= 16384 and h * w <= 256:
        layers.append(Layer.from_dict(dict(op="linear", in_channels=c, out_channels=10, in_dim=[h, w],
                                           flatten=True, activation="none"), len(layers)))
    return Network(input=shape, layers=tuple(layers))


def rate(fn, nets: list[Network], repeat: int) -> float:
    """Best-of-``repeat`` networks per second of ``fn`` over ``nets``."""
    best = float("inf")
    for _ in range(repeat):
        t0 = time.perf_counter()
        for net in nets:
            fn(net)
        best = min(best, time.perf_counter() - t0)
    return len(nets) / best


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--random", type=int, default=2000, help="random networks (default 2000)")
    ap.add_argument("--repeat", type=int, default=5, help="timing repeats, best taken (default 5)")
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()

    dev = MAX78000()
    vendor = {name: Network.load(DATA / f"{name}.yaml") for name in MEASURED_US}
    rng = random.Random(args.seed)
    rand = [random_network(rng) for _ in range(args.random)]
    reports = [dev.report(n) for n in rand]
    fit = sum(r.fits for r in reports)

    print(f"MAX78000 device model  (python {platform.python_version()}, {platform.machine()})")
    print("\nvendor networks: model vs board")
    print(f"{'network':<14} {'layers':>6} {'weight B':>9} {'cycles':>8} {'model ms':>9} {'board ms':>9} {'error':>7}")
    for name, net in vendor.items():
        r = dev.report(net)
        err = (r.latency_ms * 1e3 - MEASURED_US[name]) / MEASURED_US[name]
        print(f"{name:<14} {r.layers:>6} {r.weight_bytes:>9,} {r.cycles:>8,} {r.latency_ms:>9.3f} "
              f"{MEASURED_US[name] / 1e3:>9.3f} {err:>+7.2%}")

    vendor_nets = list(vendor.values()) * 50
    print("\nthroughput (networks per second, best of", args.repeat, "runs)")
    print(f"  report(), 4 vendor networks x 50   : {rate(dev.report, vendor_nets, args.repeat):>10,.0f}")
    print(f"  latency_ms(), 4 vendor networks x 50: {rate(dev.latency_ms, vendor_nets, args.repeat):>10,.0f}")
    print(f"  report(), {len(rand)} random networks   : {rate(dev.report, rand, args.repeat):>10,.0f}")
    print(f"  latency_ms(), {len(rand)} random networks: {rate(dev.latency_ms, rand, args.repeat):>10,.0f}")
    mean_layers = sum(len(n) for n in rand) / len(rand)
    print(f"\nrandom networks: {mean_layers:.1f} layers on average, {fit}/{len(rand)} fit "
          f"({100 * fit / len(rand):.0f}%)")


if __name__ == "__main__":
    main()
