"""Leave-one-out error of a predictor adapted to a device's samples."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from search_spaces import get_space

__all__ = ["LooResult", "leave_one_out"]


@dataclass(frozen=True)
class LooResult:
    """Leave-one-out predictions of every sample.

    Attributes:
        archs: canonical architectures of the samples.
        measured_ms: their measured latencies.
        predicted_ms: the prediction of each sample by a predictor that did not see its latency.
        std_ms: that predictor's standard deviation for the sample.
    """

    archs: list[str]
    measured_ms: np.ndarray
    predicted_ms: np.ndarray
    std_ms: np.ndarray

    @property
    def rel_error(self) -> np.ndarray:
        """Signed relative errors ``predicted / measured - 1``."""
        return self.predicted_ms / self.measured_ms - 1.0

    def std_scale(self) -> float:
        """Factor (>= 1) by which the predictor's std must grow for the leave-one-out errors to have
        unit variance: ``sqrt(mean(z^2))`` with ``z = log(predicted / measured) / (std / predicted)``."""
        rel_std = np.maximum(self.std_ms / self.predicted_ms, 1e-9)
        z = np.log(self.predicted_ms / self.measured_ms) / rel_std
        return float(max(1.0, np.sqrt(np.mean(z**2))))

    def summary(self) -> dict[str, float]:
        """Median and max absolute relative error, share within 10%, n, and the std scale."""
        e = np.abs(self.rel_error)
        return {
            "n": int(e.size),
            "median_abs_error": float(np.median(e)),
            "max_abs_error": float(np.max(e)),
            "within_10pct": float(np.mean(e <= 0.10)),
            "std_scale": self.std_scale(),
        }

    def to_dict(self) -> dict[str, Any]:
        """Summary and per-sample values, JSON-serialisable."""
        return {
            **self.summary(),
            "samples": [
                {"arch": a, "measured_ms": float(m), "predicted_ms": float(p), "std_ms": float(sd)}
                for a, m, p, sd in zip(self.archs, self.measured_ms, self.predicted_ms, self.std_ms)
            ],
        }


def leave_one_out(base: Any, space: str, archs: Sequence[Any], latencies_ms: np.ndarray,
                  *, max_iter: int = 8) -> LooResult:
    """Predict each sample from the others with ``base.adapt`` (the un-adapted predictor).

    A sample that is not a reference architecture is simply left out of the adaptation. A
    reference architecture cannot be left out (adaptation needs all 10), so its latency is replaced
    by the value ``v`` at which the adapted predictor's prediction for it equals ``v`` (the
    self-consistent fixed point, found by the secant method on log-latency); for a Gaussian-process
    head that is exactly the prediction from the other samples, and the measured value is never
    used.
    """
    sp = get_space(space)
    keys = [sp.format(a) for a in archs]
    y = np.asarray(latencies_ms, dtype=np.float64)
    refs = {sp.format(a) for a in base.ref_archs_}
    n = len(keys)
    pred = np.empty(n)
    std = np.empty(n)
    for i in range(n):
        rest = [j for j in range(n) if j != i]
        if keys[i] not in refs:
            q = base.adapt([keys[j] for j in rest], y[rest])
            m, sd = q.predict([keys[i]], return_std=True)
            pred[i], std[i] = float(m[0]), float(sd[0])
            continue

        def g(u: float, i: int = i) -> tuple[float, float]:
            yy = y.copy()
            yy[i] = np.exp(u)
            m, sd = base.adapt(keys, yy).predict([keys[i]], return_std=True)
            return float(np.log(m[0])) - u, float(sd[0] / m[0])

        u0 = float(np.mean(np.log(y[rest])))
        u1 = u0 + 0.1
        (g0, _), (g1, rs) = g(u0), g(u1)
        for _ in range(max_iter):
            if abs(g1) < 1e-6 or g1 == g0:
                break
            u0, u1, g0 = u1, u1 - g1 * (u1 - u0) / (g1 - g0), g1
            g1, rs = g(u1)
        pred[i] = float(np.exp(u1 + g1))
        std[i] = rs * pred[i]
    return LooResult(keys, y, pred, std)
