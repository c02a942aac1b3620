"""Active choice of extra architectures to measure, before any of them is measured."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from search_spaces import get_space

from ._errors import PredictorInputError
from ._model import LatencyPredictor, hw_embedding

__all__ = ["select_extra", "POOL_SIZE"]

POOL_SIZE = 2000  # random candidate architectures the kit chooses its extras from


def _plausible_embeddings(predictor: LatencyPredictor) -> list[np.ndarray]:
    """Hardware embeddings of the predictor's meta-train devices (stand-ins for the unknown one)."""
    from ._data import load_latency_table

    table = load_latency_table(predictor.space)
    names = [d for d in getattr(predictor, "meta_train_devices_", []) if d in table.devices]
    names = names or list(table.splits["meta_train"])
    return [hw_embedding(table.device(d)[table.ref_index], predictor.use_level)[0] for d in names]


def select_extra(predictor: LatencyPredictor, k: int, pool: Sequence[Any] | None = None, *,
                 seed: int = 0) -> list[Any]:
    """``k`` architectures to measure after the references, chosen by the predictor's uncertainty.

    The closed-form head of each ensemble member is Bayesian linear regression on features
    ``phi`` (prior variance ``sw2``, noise ``sn2``); its posterior variance at an architecture
    depends only on which architectures are measured, not on their latencies. So the choice can
    be made before measuring: greedily, the candidate with the largest posterior variance given
    the references and the extras chosen so far, summed over the members and over plausible
    devices (the embeddings of the predictor's meta-train devices, as the new device's own is
    unknown), is added, and the variances are updated (rank-one, exact). Candidates: ``pool``
    (default: ``POOL_SIZE`` random architectures of the space drawn with ``seed``), the
    references and duplicates removed.

    Raises:
        PredictorInputError: ``k`` not an integer in 0..number of candidates.
    """
    if isinstance(k, bool) or not isinstance(k, (int, np.integer)):
        raise PredictorInputError(f"the number of extra architectures must be an integer, got {k!r}")
    space = get_space(predictor.space)
    refs = [space.format(a) for a in predictor.ref_archs_]
    if pool is None:
        rng = np.random.default_rng(seed)
        pool = [space.random_arch(rng) for _ in range(POOL_SIZE)]
    seen = set(refs)
    cands: list[Any] = []
    for a in pool:
        key = space.format(a)
        if key not in seen:
            seen.add(key)
            cands.append(a)
    if k < 0 or k > len(cands):
        raise PredictorInputError(
            f"the number of extra architectures must be between 0 and {len(cands)} (the candidates), got {k}")
    if k == 0:
        return []
    xs_c, cs_c, bs_c = predictor._features(cands)
    xs_r, cs_r, bs_r = predictor._features(predictor.ref_archs_)
    # the device basis enters the head only with basis_fit="gp", at a scale chosen from the
    # measured values; the choice here leaves it out (with "nnls" it is not in the head at all)
    score = np.zeros(len(cands))
    states = []
    for emb in _plausible_embeddings(predictor):
        for m in predictor.members_:
            _, phi_c = predictor._base(m, xs_c, emb, cs_c)
            _, phi_r = predictor._base(m, xs_r, emb, cs_r)
            phi_c = phi_c.astype(np.float64)
            phi_r = phi_r.astype(np.float64)
            sw2 = float(np.exp(2 * m["log_sw"][0]))
            sn2 = float(np.exp(2 * m["log_sn"][0]))
            cov = np.linalg.inv(np.eye(phi_c.shape[1]) / sw2 + phi_r.T @ phi_r / sn2)  # weight posterior
            a = phi_c @ cov
            var = np.einsum("ij,ij->i", a, phi_c)
            states.append([phi_c, cov, var, sn2])
            score += var
    chosen: list[int] = []
    for _ in range(k):
        masked = score.copy()
        masked[chosen] = -np.inf
        j = int(np.argmax(masked))
        chosen.append(j)
        score[:] = 0.0
        for st in states:
            phi_c, cov, var, sn2 = st
            u = cov @ phi_c[j]
            denom = sn2 + float(phi_c[j] @ u)
            b = phi_c @ u
            var -= b * b / denom
            st[1] = cov - np.outer(u, u) / denom
            score += var
    return [cands[j] for j in chosen]

