"""The hardware embedding of a device: its log-latencies on a space's reference architectures."""

from __future__ import annotations

import numpy as np

__all__ = ["hw_embedding", "EPS_MS"]

EPS_MS = 1e-3
"""Latencies are floored at this (ms) before their log is taken."""
_EPS_MS = EPS_MS


def hw_embedding(ref_ms: np.ndarray, use_level: bool = True) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(embedding (..., 12), mu, sd) of reference latencies (..., 10).

    The log-latencies on the reference architectures are centred and scaled (10 values) and their
    mean ``mu`` (zero unless ``use_level``) and log-std are appended; targets are
    ``(log y - mu) / sd``.
    """
    lg = np.log(np.maximum(ref_ms, _EPS_MS))
    mu = lg.mean(-1)
    sd = np.maximum(lg.std(-1), 1e-3)
    z = (lg - mu[..., None]) / sd[..., None]
    level = mu[..., None] / 3.0 if use_level else np.zeros_like(mu[..., None])
    emb = np.concatenate([z, level, np.log(sd)[..., None]], -1)
    return emb, mu, sd
