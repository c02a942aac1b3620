"""Metrics of the latency benchmark: rank correlations, MAPE, share within +-10%."""

from __future__ import annotations

import numpy as np

__all__ = ["spearman", "kendall", "mape", "within", "all_metrics"]


def spearman(y_true: np.ndarray, y_pred: np.ndarray) -> float:
    """Spearman rank correlation."""
    from scipy import stats  # lazy: scipy.stats takes seconds to import

    return float(stats.spearmanr(y_true, y_pred).statistic)


def kendall(y_true: np.ndarray, y_pred: np.ndarray) -> float:
    """Kendall tau-b."""
    from scipy import stats

    return float(stats.kendalltau(y_true, y_pred).statistic)


def mape(y_true: np.ndarray, y_pred: np.ndarray) -> float:
    """Mean absolute percentage error, in percent."""
    return float(np.mean(np.abs(y_pred - y_true) / y_true) * 100)


def within(y_true: np.ndarray, y_pred: np.ndarray, tol: float = 0.10) -> float:
    """Share (in percent) of predictions within ``tol`` relative error of the measurement."""
    return float(np.mean(np.abs(y_pred - y_true) <= tol * y_true) * 100)


def all_metrics(y_true: np.ndarray, y_pred: np.ndarray) -> dict[str, float]:
    """Spearman, Kendall, MAPE (%) and within-10% (%)."""
    return {"spearman": spearman(y_true, y_pred), "kendall": kendall(y_true, y_pred),
            "mape": mape(y_true, y_pred), "within10": within(y_true, y_pred)}
