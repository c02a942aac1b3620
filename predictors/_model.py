"""The meta-learned, hardware-conditioned latency predictor."""

from __future__ import annotations

import copy
import time
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from search_spaces import get_space, nasbench201_feature_table

from ._cost import cost_features_encoded
from ._data import LatencyTable, flops_params, load_latency_table
from ._embedding import EPS_MS as _EPS_MS
from ._embedding import hw_embedding
from ._errors import PredictorInputError
from ._save import save_predictor
from ._train import meta_train_member, train_rows

__all__ = ["LatencyPredictor", "check_samples", "hw_embedding"]


# Per-space defaults of constructor arguments left as None (chosen on the meta-valid devices;
# see docs/predictor.md). Saved files store the resolved values, so changing a default here
# never changes how an existing file is read.
SPACE_DEFAULTS: dict[str, dict[str, Any]] = {
    "nasbench201": {"gp_features": "h", "mix_devices": 0.25, "device_basis": False, "cost_head": True},
    "fbnet": {"gp_features": "hc", "mix_devices": 0.25, "device_basis": False, "cost_head": True},
    "ofa_mbv3": {"gp_features": "h", "mix_devices": 0.5, "device_basis": True, "basis_fit": "nnls",
                 "cost_head": False},
}
# Prior scales of the device basis tried at adaptation; the one with the highest marginal
# likelihood of the samples (summed over the ensemble members) is used (0 = no basis).
BASIS_SCALES: tuple[float, ...] = (0.0, 0.3, 1.0, 3.0, 10.0)
# The analytic cost head (``cost_head``): hypothesis families about a device, each fitted in closed
# form with its hyperparameters chosen by the samples' marginal likelihood, then averaged with
# weights proportional to exp(log marginal likelihood) (the network's: the members' mean).
# "network": the network's prediction with its closed-form correction, kernel and noise times an
# amplitude from ``COST_NET_AMPS`` (the amplitude leaves the mean unchanged; it lets the likelihood
# see how far the samples are from the network's prior mean). "meta": the network is dropped and
# the device's standardised log-latency is a linear function of the standardised analytic cost
# features with the meta-learned prior (mean and covariance of the meta-train devices' weights;
# standard deviations times a scale from ``COST_META_SCALES``). "flat": an isotropic zero-mean
# prior (``COST_FLAT_SCALES``, variance per feature scale^2 / F). "macs": linear in log-MACs and
# log-parameters alone (``COST_FLAT_SCALES``). Each analytic family tries the noise levels ``COST_NOISE``.
COST_NET_AMPS: tuple[float, ...] = (1.0, 2.0, 4.0, 8.0)
COST_META_SCALES: tuple[float, ...] = (0.25, 0.5, 1.0, 2.0, 4.0)
COST_FLAT_SCALES: tuple[float, ...] = (0.3, 1.0, 3.0)
COST_NOISE: tuple[float, ...] = (0.05, 0.1, 0.2, 0.4)
"""Noise standard deviations (standardised log-latency) tried by the "analytic" hypotheses."""
COST_MIN_WEIGHT = 1e-3
"""Families of the average lighter than this are left out of prediction (the rest renormalised):
a device the analytic fits explain then skips the network entirely."""


def check_samples(latencies_ms: Sequence[float] | np.ndarray, n_archs: int) -> np.ndarray:
    """Validate measured latencies: finite, > 0, one per architecture."""
    try:
        y = np.asarray(latencies_ms, dtype=np.float64).reshape(-1)
    except (TypeError, ValueError):
        raise PredictorInputError("latencies_ms must be a sequence of numbers (milliseconds)") from None
    if y.shape[0] != n_archs:
        raise PredictorInputError(
            f"got {n_archs} architectures but {y.shape[0]} latencies; give one latency (ms) per architecture"
        )
    bad = np.nonzero(~np.isfinite(y) | (y <= 0))[0]
    if bad.size:
        i = int(bad[0])
        raise PredictorInputError(
            f"latency #{i} is {y[i]!r}; every latency must be a finite number of milliseconds > 0"
        )
    return y


def _nb201_table() -> np.ndarray:
    """Raw features of all 15,625 NAS-Bench-201 cells, row = cell code."""
    return nasbench201_feature_table()


def _relu(a: np.ndarray) -> np.ndarray:
    return np.maximum(a, 0, out=a)


class LatencyPredictor:
    """Meta-learned latency predictor conditioned on a hardware embedding.

    An MLP maps (architecture features, hardware embedding) to a hidden vector ``h`` and a
    standardised log-latency ``z0 = w.h + b``; the hardware embedding is the device's log-latencies
    on the space's 10 reference architectures. Adapting to a device fits, in closed form, a
    Bayesian linear correction on ``[h, 1]`` to the residuals of its samples (a Gaussian process
    with a learned linear kernel); meta-training back-propagates through that solve (R2-D2 style),
    so the network learns features that a ten-sample linear fit can steer. An ensemble of members
    gives an epistemic spread; ``predict(..., return_std=True)`` adds it to the Bayesian variance.

    Args:
        space: search-space name ("nasbench201", "fbnet", "ofa_mbv3").
        hidden: width of the hidden layers.
        n_layers: number of hidden layers after the input layer.
        n_members: ensemble size.
        n_steps: meta-training steps per member.
        batch_devices: devices (real and mixed) per step.
        n_query: query architectures per device per step.
        lr: Adam learning rate.
        weight_decay: AdamW weight decay.
        mix_devices: share of each batch made of synthetic devices (mixtures of meta-train devices);
            None: the space's default (``SPACE_DEFAULTS``).
        mix_space: "linear" (positive combinations of latencies) or "log" (of log-latencies).
        adapt_head: "gp" (closed-form Bayesian linear head) or "none" (embedding only).
        linear_rank: rank of an extra linear path ``(x A) . c(emb)`` whose ``x A`` also enters the
            closed-form head (0 = off).
        gp_features: features of the closed-form head: "h" (last hidden layer), "hx" (hidden
            layer and the standardised architecture features, with a learned prior scale) or "hc"
            (hidden layer and the standardised log-MACs and log-parameters, with a learned prior
            scale, so ten samples can fit a slope on the analytic cost). None: the space's default
            (``SPACE_DEFAULTS``).
        device_basis: add a "device mixture" basis to the closed-form head: for each meta-train
            device, a ridge-regression model of its log-latency that is linear in the
            architecture features (fitted at meta-training), standardised on the references; the
            new device's residuals are regressed on them with a Gaussian prior whose scale is
            chosen at adaptation by the samples' marginal likelihood (``BASIS_SCALES``, 0 = off).
            None: the space's default (``SPACE_DEFAULTS``).
        basis_fit: how adaptation uses the device basis: "gp" (extra columns of the closed-form
            head, Gaussian prior, scale by marginal likelihood) or "nnls" (a non-negative
            combination of the member's own prediction ``z0`` and the basis columns plus a
            constant, fitted to the samples by non-negative least squares, is the prior mean;
            the closed-form head on ``[h, 1]`` then fits the residuals). None: the space's
            default (``SPACE_DEFAULTS``; "gp" where unset).
        cost_head: add the analytic cost head: the space's analytic cost features
            (:func:`predictors.cost_features`: per-operation-type MACs, parameters, activation
            traffic, operation counts) enter a closed-form fit with a prior meta-learned across
            the meta-train devices (mean and covariance of their per-device weights); at
            adaptation the prediction is the average of the network and three analytic fits
            (meta-learned prior, isotropic prior, log-MACs/-params) weighted by the samples'
            marginal likelihood, so a device that looks like an analytic cost model is predicted
            like one (see the ``COST_*`` constants). Needs
            ``adapt_head="gp"``, ``linear_rank=0``, ``gp_features`` "h" or "hc" and no device basis.
            None: the space's default (``SPACE_DEFAULTS``) where those settings allow it, else off.
        use_level: feed the mean log-latency of the references (the device's absolute speed) to
            the network; when False the prediction is exactly proportional to the samples' scale.
        train_rows: meta-train devices' rows used: "pool" (HELP's train pool) or "all" (all rows
            but HELP's query rows).
        seed: meta-training seed (member m uses torch/numpy seed 1000 * seed + m).
        verbose: print progress.
    """

    def __init__(
        self,
        space: str = "nasbench201",
        *,
        hidden: int = 128,
        n_layers: int = 2,
        n_members: int = 4,
        n_steps: int = 1000,
        batch_devices: int = 24,
        n_query: int = 128,
        lr: float = 2e-3,
        weight_decay: float = 1e-4,
        mix_devices: float | None = None,
        mix_space: str = "linear",
        adapt_head: str = "gp",
        linear_rank: int = 0,
        gp_features: str | None = None,
        device_basis: bool | None = None,
        basis_fit: str | None = None,
        cost_head: bool | None = None,
        use_level: bool = True,
        train_rows: str = "all",
        seed: int = 0,
        verbose: bool = False,
    ) -> None:
        self.space = space
        self.hidden = hidden
        self.n_layers = n_layers
        self.n_members = n_members
        self.n_steps = n_steps
        self.batch_devices = batch_devices
        self.n_query = n_query
        self.lr = lr
        self.weight_decay = weight_decay
        if mix_devices is None:
            mix_devices = SPACE_DEFAULTS.get(space, {}).get("mix_devices", 0.25)
        self.mix_devices = mix_devices
        self.mix_space = mix_space
        self.adapt_head = adapt_head
        self.linear_rank = linear_rank
        if gp_features is None:
            gp_features = SPACE_DEFAULTS.get(space, {}).get("gp_features", "h")
        if gp_features not in ("h", "hx", "hc"):
            raise ValueError(f"gp_features must be 'h', 'hx' or 'hc', got {gp_features!r}")
        self.gp_features = gp_features
        if device_basis is None:
            device_basis = SPACE_DEFAULTS.get(space, {}).get("device_basis", False)
        self.device_basis = bool(device_basis)
        if basis_fit is None:
            basis_fit = SPACE_DEFAULTS.get(space, {}).get("basis_fit", "gp")
        if basis_fit not in ("gp", "nnls"):
            raise ValueError(f"basis_fit must be 'gp' or 'nnls', got {basis_fit!r}")
        if basis_fit == "nnls" and (linear_rank or gp_features == "hx" or adapt_head != "gp"):
            raise ValueError("basis_fit='nnls' needs adapt_head='gp', linear_rank=0 and gp_features 'h' or 'hc'")
        self.basis_fit = basis_fit
        fits = adapt_head == "gp" and not linear_rank and gp_features in ("h", "hc") and not self.device_basis
        if cost_head is None:  # the space's default where the other settings allow it
            cost_head = SPACE_DEFAULTS.get(space, {}).get("cost_head", False) and fits
        if cost_head and not fits:
            raise ValueError("cost_head needs adapt_head='gp', linear_rank=0, gp_features 'h' or 'hc' and "
                             "device_basis off")
        self.cost_head = bool(cost_head)
        self.use_level = use_level
        self.train_rows = train_rows
        self.seed = seed
        self.verbose = verbose

    # ------------------------------------------------------------------ helpers
    def get_params(self) -> dict[str, Any]:
        """Constructor hyperparameters."""
        keys = ("space", "hidden", "n_layers", "n_members", "n_steps", "batch_devices", "n_query",
                "lr", "weight_decay", "mix_devices", "mix_space", "adapt_head", "linear_rank",
                "gp_features", "device_basis", "basis_fit", "cost_head", "use_level", "train_rows", "seed")
        return {k: getattr(self, k) for k in keys}

    @property
    def is_adapted(self) -> bool:
        """Whether :meth:`adapt` has given this predictor a device."""
        return hasattr(self, "support_y_")

    def _features(self, archs: Sequence[Any] | np.ndarray
                  ) -> tuple[np.ndarray, np.ndarray | None, np.ndarray | None]:
        """(standardised features, standardised cost features or None, device basis or None)."""
        if isinstance(archs, np.ndarray) and archs.dtype.kind == "f" and archs.ndim == 2:
            x = archs  # already encoded
        else:
            x = get_space(self.space).encode_many(list(archs))
        return ((x - self.x_mean_) / self.x_std_).astype(np.float32), self._cost(x), self._basis(x)

    def _basis(self, x_raw: np.ndarray) -> np.ndarray | None:
        """Device-mixture basis (N, K) of raw features (see ``device_basis``), or None."""
        if not self.device_basis:
            return None
        return x_raw.astype(np.float64) @ self.basis_w_ + self.basis_b_

    def fit_device_basis(self, table: LatencyTable, devices: Sequence[str], ridge: float = 1e-2
                         ) -> LatencyPredictor:
        """Fit the device basis: per device, ridge regression of its log-latency on the
        standardised features (rows of ``train_rows`` and the references), folded to act on raw
        features and scaled to zero mean and unit std on the reference architectures."""
        x = table.features()
        rows = np.union1d(train_rows(table, self.train_rows), table.ref_index)
        a = np.concatenate([(x[rows] - self.x_mean_) / self.x_std_, np.ones((len(rows), 1))], 1)
        tgt = np.log(np.maximum(np.stack([table.device(d)[rows] for d in devices], 1), _EPS_MS))
        coef = np.linalg.solve(a.T @ a + ridge * np.eye(a.shape[1]), a.T @ tgt)  # (D + 1, K)
        w = coef[:-1] / self.x_std_[:, None]
        b = coef[-1] - (self.x_mean_ / self.x_std_) @ coef[:-1]
        on_refs = x[table.ref_index] @ w + b
        mu, sd = on_refs.mean(0), np.maximum(on_refs.std(0), 1e-6)
        self.basis_w_ = w / sd
        self.basis_b_ = (b - mu) / sd
        self.basis_devices_ = list(devices)
        return self

    @property
    def has_cost_prior(self) -> bool:
        """Whether the analytic cost head's meta-learned prior is fitted."""
        return hasattr(self, "ana_prior_m_")

    def fit_cost_prior(self, table: LatencyTable, devices: Sequence[str], ridge: float = 1e-2,
                       shrink: float = 0.1) -> LatencyPredictor:
        """Meta-learn the analytic cost head's prior from ``devices`` (no network training).

        Per device, ridge regression of its standardised log-latency (centred and scaled on the
        reference architectures, as at adaptation) on the standardised analytic cost features
        (rows of ``train_rows`` and the references); the prior mean is the average of the
        devices' weights, the prior covariance their covariance plus ``shrink`` times its diagonal
        (and a small ridge), so directions the devices never varied in keep some freedom.
        Used by ``fit`` (``cost_head``) and to add the head to a network trained without it.
        """
        if not self.cost_head:
            raise ValueError("fit_cost_prior needs cost_head=True")
        x = table.features()
        rows = np.union1d(train_rows(table, self.train_rows), table.ref_index)
        c = self._ana_raw(x[rows])
        mean = c.mean(0)
        std = c.std(0)
        self.ana_mean_ = mean
        self.ana_std_ = np.where(std > 1e-9 * np.maximum(np.abs(mean), 1.0), std, 1.0)
        n_cost = len(mean) - 2
        # the meta-learned prior acts on the cost features (not on the log-MACs/-params pair)
        a = np.concatenate([((c - self.ana_mean_) / self.ana_std_)[:, :n_cost], np.ones((len(rows), 1))], 1)
        ref = np.asarray(table.ref_index)
        ws = []
        for d in devices:
            lg = np.log(np.maximum(table.device(d), _EPS_MS))
            _, mu, sd = hw_embedding(table.device(d)[ref])
            z = (lg[rows] - mu) / sd
            ws.append(np.linalg.solve(a.T @ a + ridge * np.eye(a.shape[1]), a.T @ z)[:-1])
        w = np.asarray(ws)
        f = w.shape[1]
        self.ana_prior_m_ = w.mean(0)
        if len(w) > 1:
            cov = np.cov(w.T).reshape(f, f)
        else:
            cov = np.diag(np.full(f, float(np.mean(w * w))))
        self.ana_prior_s_ = cov + shrink * np.diag(np.diag(cov)) + 1e-4 * np.eye(f)
        self.ana_devices_ = list(devices)
        return self

    def _ana_raw(self, x_raw: np.ndarray) -> np.ndarray:
        """Analytic cost features (N, F) and log-MACs, log-parameters (FlopsProxy's) of raw features."""
        lc = np.log(np.maximum(flops_params(self.space, x_raw), 1e-6)).astype(np.float64)
        return np.concatenate([cost_features_encoded(self.space, x_raw), lc], 1)

    def _ana(self, x_raw: np.ndarray) -> np.ndarray:
        """Standardised analytic features (N, F + 2): :meth:`_ana_raw` standardised."""
        return (self._ana_raw(x_raw) - self.ana_mean_) / self.ana_std_

    def _cost(self, x_raw: np.ndarray) -> np.ndarray | None:
        """Standardised (log-MACs, log-params) (N, 2) of raw features, or None if not used."""
        if self.gp_features != "hc":
            return None
        lc = np.log(np.maximum(flops_params(self.space, x_raw), 1e-6))
        return ((lc - self.cost_mean_) / self.cost_std_).astype(np.float32)

    # ------------------------------------------------------------------ meta-training
    def fit(
        self,
        table: LatencyTable | None = None,
        devices: Sequence[str] | None = None,
        *,
        valid_devices: Sequence[str] | None = None,
        callback: Callable[[int, int, float], None] | None = None,
    ) -> LatencyPredictor:
        """Meta-train on ``devices`` (default: HELP's meta-train devices of the space).

        Only the rows chosen by ``train_rows`` (and the reference rows) of those devices are
        used; the query rows of HELP's protocol never are. When
        ``valid_devices`` is given (default: HELP's meta-valid devices), the checkpoint with the
        best mean Spearman on them (support = the 10 references, query = their band-trimmed
        query rows) is kept, evaluated every ``n_steps // 10`` steps.
        """
        import torch


        table = table or load_latency_table(self.space)
        devices = list(devices) if devices is not None else table.splits["meta_train"]
        valid = list(valid_devices) if valid_devices is not None else table.splits["meta_valid"]
        x_all = table.features()
        pool = np.union1d(train_rows(table, self.train_rows), table.ref_index)
        self.x_mean_ = x_all[pool].mean(0)
        std = x_all[pool].std(0)
        self.x_std_ = np.where(std > 1e-8, std, 1.0)
        if self.gp_features == "hc":
            lc = np.log(np.maximum(flops_params(self.space, x_all[pool]), 1e-6))
            self.cost_mean_ = lc.mean(0)
            self.cost_std_ = np.maximum(lc.std(0), 1e-6)
        if self.device_basis:
            self.fit_device_basis(table, devices)
        self.ref_archs_ = list(table.ref_archs)
        self.ref_index_ = np.asarray(table.ref_index)
        self.meta_train_devices_ = devices
        self.meta_valid_devices_ = valid
        torch_threads = torch.get_num_threads()
        t0 = time.perf_counter()
        members = []
        scores = []
        try:
            for m in range(self.n_members):
                weights, score = meta_train_member(self, table, devices, valid, 1000 * self.seed + m, member=m,
                                                   callback=callback)
                members.append(weights)
                scores.append(score)
        finally:
            torch.set_num_threads(torch_threads)
        self.members_ = members
        self.valid_spearman_ = scores
        if self.cost_head:
            self.fit_cost_prior(table, devices)
        self.calibrate_std(table, valid or devices)
        self.train_seconds_ = time.perf_counter() - t0
        return self

    def calibrate_std(self, table: LatencyTable, devices: Sequence[str]) -> LatencyPredictor:
        """Scale ``return_std`` so that standardised errors have unit variance on ``devices``
        (adapted on their 10 references, scored on their band-trimmed query rows)."""
        from ._data import protocol_split

        self.std_scale_ = 1.0
        num, den = 0.0, 0.0
        x = table.features()
        for d in devices:
            y = table.device(d)
            _, q = protocol_split(table, d)
            a = self.adapt(table.ref_archs, y[table.ref_index])
            zm, zv = a.predict_z(x[q])
            z = (np.log(y[q]) - a.mu_) / a.sd_
            num += float(np.sum((z - zm.mean(0)) ** 2))
            den += float(np.sum(zv.mean(0) + zm.var(0)))
        if den > 0:
            self.std_scale_ = float(np.sqrt(num / den))
        return self

    # ------------------------------------------------------------------ inference
    def _hidden(self, member: dict[str, np.ndarray], x: np.ndarray, emb: np.ndarray) -> np.ndarray:
        """Hidden vector ``h`` for features ``x`` (N, D) and one embedding ``emb`` (E,)."""
        bias = member["b0"] + emb.astype(np.float32) @ member["W0e"]
        a = _relu(x @ member["W0x"] + bias)
        for i in range(1, self.n_layers + 1):
            a = _relu(a @ member[f"W{i}"] + member[f"b{i}"])
        return a

    def _base(self, member: dict[str, np.ndarray], x: np.ndarray, emb: np.ndarray,
              cost: np.ndarray | None = None, basis: np.ndarray | None = None
              ) -> tuple[np.ndarray, np.ndarray]:
        """(z0 (N,), phi (N, P)) of one member: the mean and the features of the closed-form head
        (``basis``: the device basis already multiplied by its prior scale)."""
        h = self._hidden(member, x, emb)
        z = h @ member["w_out"] + member["b_out"][0]
        parts = [h * np.float32(1 / np.sqrt(h.shape[1]))]
        if self.linear_rank:
            lx = x @ member["A"]
            c = _relu(emb.astype(np.float32) @ member["C0"] + member["c0"]) @ member["C1"] + member["c1"]
            z = z + lx @ c
            parts.append(lx * np.float32(np.exp(member["log_sl"][0]) / np.sqrt(self.linear_rank)))
        if self.gp_features == "hx":
            parts.append(x * np.float32(np.exp(member["log_sx"][0]) / np.sqrt(x.shape[1])))
        if self.gp_features == "hc":
            parts.append(cost * np.float32(np.exp(member["log_sc"][0]) / np.sqrt(cost.shape[1])))
        if basis is not None:
            parts.append(basis.astype(np.float32))
        parts.append(np.ones((h.shape[0], 1), np.float32))
        return z, np.concatenate(parts, 1)

    def _member_support_state(self, member: dict[str, np.ndarray], emb: np.ndarray, xs: np.ndarray,
                              cs: np.ndarray | None, zs: np.ndarray, bs: np.ndarray | None = None,
                              prior_basis: np.ndarray | None = None) -> tuple[dict[str, np.ndarray], float]:
        """(closed-form head state, log marginal likelihood of the samples) of one member.

        ``bs``: device basis columns in the head (times their prior scale); ``prior_basis``: basis
        columns of the non-negative prior mean (``basis_fit="nnls"``).
        """
        from scipy.optimize import nnls

        z0, phi = self._base(member, xs, emb, cs, bs)
        z0 = z0.astype(np.float64)
        phi = phi.astype(np.float64)
        state: dict[str, np.ndarray] = {}
        log_ev = 0.0
        if prior_basis is not None:
            # prior mean a * z0 + B w + c with a, w >= 0 (c of either sign), least squares
            n = len(zs)
            a_mat = np.concatenate([z0[:, None], prior_basis.astype(np.float64), np.ones((n, 1)), -np.ones((n, 1))], 1)
            coef = nnls(a_mat, zs, maxiter=50 * a_mat.shape[1])[0]
            state["nn_a"] = np.asarray(coef[0])
            state["nn_w"] = coef[1:-2].copy()
            state["nn_c"] = np.asarray(coef[-2] - coef[-1])
            z0 = a_mat @ coef
        if self.adapt_head == "gp":
            sw2 = float(np.exp(2 * member["log_sw"][0]))
            sn2 = float(np.exp(2 * member["log_sn"][0]))
            k = sw2 * phi @ phi.T + sn2 * np.eye(phi.shape[0])
            kinv = np.linalg.inv(k)
            r = zs - z0
            log_ev = float(-0.5 * r @ kinv @ r - 0.5 * np.linalg.slogdet(k)[1]
                           - 0.5 * len(r) * np.log(2 * np.pi))
            # GP with kernel sw2 * phi.phi' + noise: mean correction sw2 k_q' alpha,
            # variance sw2 |phi_q|^2 - sw2^2 k_q' Kinv k_q + sn2, with k_q = phi_s phi_q
            state["phi_s"] = phi.astype(np.float32)
            state["alpha"] = (sw2 * kinv @ r).astype(np.float32)
            state["kinv"] = (sw2 * sw2 * kinv).astype(np.float32)
            state["sw2"] = np.asarray(sw2)
            state["sn2"] = np.asarray(sn2)
        return state, log_ev

    def adapt(self, archs: Sequence[Any], latencies_ms: Sequence[float] | np.ndarray) -> LatencyPredictor:
        """A new predictor adapted to a device from its measured samples; ``self`` is unchanged.

        Args:
            archs: measured architectures; must include the space's 10 reference architectures
                (``ref_archs_``); any extra samples refine the fit.
            latencies_ms: their latencies in milliseconds (finite, > 0).

        Raises:
            PredictorInputError: missing reference architectures or bad latencies.
        """
        if not hasattr(self, "members_"):
            raise PredictorInputError("this predictor is not meta-trained; use predictors.load(space) or fit()")
        space = get_space(self.space)
        archs = list(archs)
        y = check_samples(latencies_ms, len(archs))
        keys = [space.format(a) for a in archs]
        pos: dict[str, list[int]] = {}
        for i, k in enumerate(keys):
            pos.setdefault(k, []).append(i)
        ref_keys = [space.format(a) for a in self.ref_archs_]
        missing = [i for i, k in enumerate(ref_keys) if k not in pos]
        if missing:
            names = "; ".join(ref_keys[i] for i in missing[:3]) + (" ..." if len(missing) > 3 else "")
            raise PredictorInputError(
                f"adapt needs the {len(ref_keys)} reference architectures (predictor.ref_archs_); "
                f"missing {len(missing)}: {names}"
            )
        ref_ms = np.array([np.exp(np.mean(np.log(y[pos[k]]))) for k in ref_keys])
        new = copy.copy(self)
        new.__dict__.pop("_head_cache", None)
        emb, mu, sd = hw_embedding(ref_ms, self.use_level)
        new.embedding_ = emb
        new.mu_ = float(mu)
        new.sd_ = float(sd)
        new.support_archs_ = archs
        new.support_y_ = y
        xs, cs, bs = self._features(archs)
        zs = (np.log(np.maximum(y, _EPS_MS)) - mu) / sd
        best: tuple[float, float, list[dict[str, np.ndarray]]] | None = None
        if self.cost_head:
            a_s = self._ana(self._encode_raw(archs))
            mix = self._adapt_cost_head(emb, xs, cs, a_s, zs)
            new.cost_mixture_ = mix
            top = max(mix, key=lambda m: m[0])
            new.log_evidence_, new.cost_hypothesis_, new.support_state_ = top[1], top[2], top[3]
            new.cost_weights_ = {("network" if m[2]["lam"] else m[2]["prior"]): m[0] for m in mix}
            new.basis_scale_ = 0.0
            return new
        if bs is not None and self.basis_fit == "nnls":
            # the basis enters the prior mean (non-negative least squares), not the head;
            # log_evidence_ is then that of the residuals given the fitted prior mean
            out = [self._member_support_state(m, emb, xs, cs, zs, None, bs) for m in self.members_]
            best = (float(sum(e for _, e in out)), 0.0, [st for st, _ in out])
        else:
            for scale in (BASIS_SCALES if bs is not None else (0.0,)):
                bsc = None if bs is None else bs * (scale / np.sqrt(bs.shape[1]))
                out = [self._member_support_state(m, emb, xs, cs, zs, bsc) for m in self.members_]
                ev = float(sum(e for _, e in out))
                if best is None or ev > best[0]:
                    best = (ev, scale, [st for st, _ in out])
        assert best is not None
        new.log_evidence_, new.basis_scale_, new.support_state_ = best
        return new

    def _cost_hypotheses(self) -> list[dict[str, Any]]:
        """The analytic cost head's hypotheses (see ``COST_NET_AMPS``): ``lam`` 1 is the network
        (``amp``: its amplitude), 0 the analytic fit (``prior`` "meta" or "flat", ``scale``,
        ``noise``)."""
        hyps: list[dict[str, Any]] = [{"lam": 1, "prior": "none", "scale": 0.0, "noise": None, "amp": amp}
                                      for amp in COST_NET_AMPS]
        for sn in COST_NOISE:
            hyps += [{"lam": 0, "prior": "meta", "scale": k, "noise": sn, "amp": 0.0} for k in COST_META_SCALES]
            hyps += [{"lam": 0, "prior": "flat", "scale": k, "noise": sn, "amp": 0.0} for k in COST_FLAT_SCALES]
            hyps += [{"lam": 0, "prior": "macs", "scale": k, "noise": sn, "amp": 0.0} for k in COST_FLAT_SCALES]
        return hyps

    def _adapt_cost_head(self, emb: np.ndarray, xs: np.ndarray, cs: np.ndarray | None, a_s: np.ndarray,
                         zs: np.ndarray) -> list[tuple[float, float, dict[str, Any], list[dict[str, np.ndarray]]]]:
        """The analytic cost head for support features ``xs``/``cs``, analytic features ``a_s``
        and standardised log-latencies ``zs``: per hypothesis family (network, meta, flat, macs),
        (posterior weight, log marginal likelihood, hypothesis, per-member head states) of the
        family's best hypothesis; the log marginal likelihood of a network hypothesis is the mean
        over the members, and the weights are proportional to ``exp`` of it."""
        n, f = a_s.shape
        fc = f - 2  # the cost features; the last two columns are log-MACs and log-parameters
        nets = []
        for member in self.members_:
            z0, phi = self._base(member, xs, emb, cs, None)
            phi = phi.astype(np.float64)
            sw2 = float(np.exp(2 * member["log_sw"][0]))
            sn2 = float(np.exp(2 * member["log_sn"][0]))
            nets.append((z0.astype(np.float64), phi, sw2, sn2))
        eye = np.eye(n)
        m_meta = np.concatenate([self.ana_prior_m_, np.zeros(2)])
        s_meta = np.zeros((f, f))
        s_meta[:fc, :fc] = self.ana_prior_s_
        flat = np.diag(np.concatenate([np.full(fc, 1.0 / fc), np.zeros(2)]))
        macs = np.diag(np.concatenate([np.zeros(fc), np.full(2, 0.5)]))

        def solve(hyp: dict[str, Any], net: tuple[np.ndarray, np.ndarray, float, float]
                  ) -> tuple[float, dict[str, np.ndarray]]:
            z0, phi, sw2, sn2 = net
            lam = hyp["lam"]
            if hyp["prior"] == "meta":
                s_w, m_w = s_meta * hyp["scale"] ** 2, m_meta
            else:
                s_w, m_w = (flat if hyp["prior"] == "flat" else macs) * hyp["scale"] ** 2, np.zeros(f)
            sb2 = 0.0 if lam else 1.0
            amp2 = hyp["amp"] ** 2
            noise = sn2 * amp2 if lam else hyp["noise"] ** 2
            sw2 = sw2 * amp2
            g = s_w @ a_s.T  # (F, S)
            k = a_s @ g + sb2 + noise * eye
            if lam:
                k += sw2 * phi @ phi.T
            r = zs - a_s @ m_w - (z0 if lam else 0.0)
            chol = np.linalg.cholesky(k)
            kinv = np.linalg.inv(k)
            alpha = kinv @ r
            ev = float(-0.5 * r @ alpha - np.log(np.diag(chol)).sum() - 0.5 * n * np.log(2 * np.pi))
            st = {"lam": np.asarray(float(lam)), "kinv": kinv, "alpha": alpha, "wc": m_w + g @ alpha,
                  "bc": np.asarray(sb2 * alpha.sum()), "g": g, "s_w": s_w, "sb2": np.asarray(sb2),
                  "sn2": np.asarray(noise), "sw2": np.asarray(sw2)}
            if lam:
                st["phi_s"] = phi
            return ev, st

        trace = self.__dict__.get("_cost_trace")  # a list to record every hypothesis in (diagnostics)
        best: dict[str, tuple[float, dict[str, Any], list[dict[str, np.ndarray]]]] = {}
        for hyp in self._cost_hypotheses():
            if hyp["lam"]:
                out = [solve(hyp, net) for net in nets]
                ev = float(np.mean([e for e, _ in out]))
                states = [st for _, st in out]
            else:  # the network plays no part: the same for every member
                ev, st = solve(hyp, nets[0])
                states = [st] * len(nets)
            if trace is not None:
                trace.append((ev, hyp, states))
            fam = "network" if hyp["lam"] else hyp["prior"]
            if fam not in best or ev > best[fam][0]:
                best[fam] = (ev, hyp, states)
        evs = np.array([b[0] for b in best.values()])
        w = np.exp(evs - evs.max())
        w /= w.sum()
        return [(float(wi), b[0], b[1], b[2]) for wi, b in zip(w, best.values())]

    def _encode_unique(self, archs: Sequence[Any] | np.ndarray) -> tuple[np.ndarray, np.ndarray | None]:
        """Raw (unstandardised) features of the distinct architectures and the inverse index."""
        if isinstance(archs, np.ndarray) and archs.dtype.kind == "f" and archs.ndim == 2:
            return archs, None
        if self.space == "nasbench201":
            space = get_space(self.space)
            codes = space.codes(list(archs))  # type: ignore[attr-defined]
            if len(codes) > 2000:
                uniq, inv = np.unique(codes, return_inverse=True)
                return _nb201_table()[uniq], inv
        return self._encode_raw(archs), None

    def _folded(self) -> tuple[np.ndarray, list[np.ndarray]]:
        """First-layer weights of all members with the feature standardisation folded in, and
        the device basis' weights as extra columns (one matmul gives both)."""
        cache = self.__dict__.get("_fold_cache")
        if cache is None:
            inv_std = 1.0 / self.x_std_
            ws = [(m["W0x"] * inv_std[:, None]).astype(np.float32) for m in self.members_]
            bs = [(m["b0"] - (self.x_mean_ * inv_std) @ m["W0x"]).astype(np.float32) for m in self.members_]
            if self.device_basis:
                ws.append(self.basis_w_.astype(np.float32))
                bs.append(self.basis_b_.astype(np.float32))
            cache = (np.concatenate(ws, 1), bs)
            self.__dict__["_fold_cache"] = cache
        return cache

    def _folded_heads(self) -> list[dict[str, Any]]:
        """Per member, the adapted closed-form head in the form the fast path uses.

        ``phi = [h / sqrt(H), e * s_e, 1]`` with ``e`` the extra features (the standardised cost
        features and the device basis, ``s_e`` their prior scales). ``w``/``b``/``c``: the output
        layer with the closed-form mean correction ``phi . phi_s' alpha`` folded in (mean
        predictions need no ``phi``); for the variance, ``ph`` (H, S) = the support features'
        hidden part over ``sqrt(H)`` (``k_q`` from one matmul), ``pe`` (E, S) their extra part
        times ``s_e``, ``p1`` (S,) their constant part, ``se2`` = ``s_e^2``, and ``kinv``,
        ``sw2``, ``sn2``.
        """
        cache = self.__dict__.get("_head_cache")
        if cache is None:
            cache = []
            hid = self.hidden
            for member, st in zip(self.members_, self.support_state_):
                scales = []
                if self.gp_features == "hc":
                    scales += [float(np.exp(member["log_sc"][0])) / np.sqrt(2)] * 2
                if self.device_basis:
                    k = self.basis_w_.shape[1]
                    scales += [getattr(self, "basis_scale_", 0.0) / np.sqrt(k)] * k
                se = np.asarray(scales, dtype=np.float64)
                w = member["w_out"].astype(np.float64)
                b = float(member["b_out"][0])
                c = np.zeros(len(se))
                head: dict[str, Any] = {}
                if st:
                    phi_s = st["phi_s"].astype(np.float64)
                    v = phi_s.T @ st["alpha"].astype(np.float64)
                    # extra columns present in phi (basis_fit="nnls": the basis is not; its
                    # prior scale is 0 and its coefficients come from the prior mean)
                    n_in = phi_s.shape[1] - hid - 1
                    pe = np.zeros((len(se), phi_s.shape[0]))
                    pe[:n_in] = phi_s[:, hid:hid + n_in].T * se[:n_in, None]
                    c[:n_in] = v[hid:hid + n_in] * se[:n_in]
                    if "nn_a" in st:  # prior mean a * z0 + B w + c
                        w = w * float(st["nn_a"])
                        b = b * float(st["nn_a"]) + float(st["nn_c"])
                        c[len(se) - len(st["nn_w"]):] += st["nn_w"]
                    w = w + v[:hid] / np.sqrt(hid)
                    b += float(v[-1])
                    head.update(ph=(phi_s[:, :hid].T / np.sqrt(hid)).astype(np.float32), pe=pe, p1=phi_s[:, -1],
                                se2=se * se, kinv=self._kinv64(member, phi_s), sw2=float(st["sw2"]),
                                sn2=float(st["sn2"]))
                head.update(w=w.astype(np.float32), b=np.float32(b), c=c)
                cache.append(head)
            self.__dict__["_head_cache"] = cache
        return cache

    def _cost_heads(self) -> list[tuple[float, list[dict[str, Any]]]]:
        """Per hypothesis family of the adapted mixture, (weight, per-member heads) in the form
        :meth:`_predict_z_cost` uses: the network's output layer with its closed-form correction
        folded in (``w``, ``b``, ``c`` on the "hc" cost columns), and for the variance the
        support's network features split as in :meth:`_folded_heads` (``ph``, ``pe``, ``p1``,
        ``se2``); the kernel inverse ``kinv`` is unscaled. Families lighter than ``COST_MIN_WEIGHT`` are
        left out and the other weights renormalised."""
        cache = self.__dict__.get("_head_cache")
        if cache is None:
            cache = []
            hid = self.hidden
            mix = getattr(self, "cost_mixture_", None) or [(1.0, 0.0, self.cost_hypothesis_, self.support_state_)]
            for weight, _, _, states in mix:
                if weight < COST_MIN_WEIGHT:
                    continue
                heads = []
                for member, st in zip(self.members_, states):
                    head: dict[str, Any] = {"st": st, "netk": bool(float(st["lam"]))}
                    if head["netk"]:
                        phi_s = st["phi_s"]
                        v = float(st["sw2"]) * (phi_s.T @ st["alpha"])
                        se = (np.full(2, float(np.exp(member["log_sc"][0])) / np.sqrt(2))
                              if self.gp_features == "hc" else np.zeros(0))
                        n_c = len(se)
                        head.update(w=(member["w_out"] + v[:hid] / np.sqrt(hid)).astype(np.float32),
                                    b=float(member["b_out"][0]) + float(v[-1]), c=v[hid:hid + n_c] * se,
                                    ph=(phi_s[:, :hid].T / np.sqrt(hid)).astype(np.float32),
                                    pe=phi_s[:, hid:hid + n_c].T * se[:, None], p1=phi_s[:, -1], se2=se * se)
                    heads.append(head)
                cache.append((weight, heads))
            total = sum(w for w, _ in cache)
            cache = [(w / total, h) for w, h in cache]
            self.__dict__["_head_cache"] = cache
        return cache

    def _predict_z_cost(self, x: np.ndarray, means: np.ndarray, variances: np.ndarray, return_var: bool) -> None:
        """:meth:`predict_z` of the analytic cost head, into ``means`` / ``variances`` (M, N): per
        member, the mixture over the hypothesis families (mean: the weighted mean; variance: the
        weighted second moment minus the squared mean)."""
        fams = self._cost_heads()
        hid = self.hidden
        use_net = any(hd["netk"] for _, heads in fams for hd in heads)
        if use_net:
            w_all, b_all = self._folded()
            emb = self.embedding_.astype(np.float32)
            bias0 = [b_all[i] + emb @ m["W0e"] for i, m in enumerate(self.members_)]
        chunk = 4096
        n_m = len(self.members_)
        for lo in range(0, x.shape[0], chunk):
            xc = x[lo:lo + chunk]
            sl = slice(lo, lo + xc.shape[0])
            ana = self._ana(xc)
            cc = self._cost(xc) if use_net else None
            pre = xc.astype(np.float32, copy=False) @ w_all if use_net else None
            hidden: dict[int, np.ndarray] = {}
            m1 = np.zeros((n_m, xc.shape[0]))
            m2 = np.zeros((n_m, xc.shape[0]))
            for weight, heads in fams:
                shared: tuple[np.ndarray, np.ndarray] | None = None
                for i, (member, hd) in enumerate(zip(self.members_, heads)):
                    st = hd["st"]
                    if not hd["netk"] and shared is not None:  # the same analytic fit for every member
                        z, var = shared
                    else:
                        z = ana @ st["wc"] + float(st["bc"])
                        kq = var = None
                        if return_var:
                            kq = ana @ st["g"] + float(st["sb2"])
                            var = np.einsum("ij,ij->i", ana @ st["s_w"], ana) + float(st["sb2"]) + float(st["sn2"])
                        if hd["netk"]:
                            assert pre is not None
                            if i not in hidden:
                                a = _relu(np.add(pre[:, i * hid:(i + 1) * hid], bias0[i]))
                                for k in range(1, self.n_layers + 1):
                                    a = _relu(a @ member[f"W{k}"] + member[f"b{k}"])
                                hidden[i] = a
                            a = hidden[i]
                            z = z + (a @ hd["w"]).astype(np.float64) + hd["b"]
                            if cc is not None:
                                z += cc.astype(np.float64) @ hd["c"]
                            if return_var:
                                sw2 = float(st["sw2"])
                                kn = (a @ hd["ph"]).astype(np.float64) + hd["p1"]
                                sq = np.einsum("ij,ij->i", a, a, dtype=np.float64) / hid + 1
                                if cc is not None:
                                    kn += cc.astype(np.float64) @ hd["pe"]
                                    sq += (cc.astype(np.float64) ** 2) @ hd["se2"]
                                kq = kq + sw2 * kn
                                var = var + sw2 * sq
                        if return_var:
                            var = np.maximum(var - np.einsum("ij,ij->i", kq @ st["kinv"], kq), 0)
                        if not hd["netk"]:
                            shared = (z, var)
                    m1[i] += weight * z
                    if return_var:
                        m2[i] += weight * (var + z * z)
            means[:, sl] = m1
            if return_var:
                variances[:, sl] = np.maximum(m2 - m1 * m1, 0)

    @staticmethod
    def _kinv64(member: dict[str, np.ndarray], phi_s: np.ndarray) -> np.ndarray:
        """``sw2^2 K^-1`` of the support kernel in float64 (the stored state is float32)."""
        sw2 = float(np.exp(2 * member["log_sw"][0]))
        sn2 = float(np.exp(2 * member["log_sn"][0]))
        k = sw2 * phi_s @ phi_s.T + sn2 * np.eye(phi_s.shape[0])
        return sw2 * sw2 * np.linalg.inv(k)

    def _encode_raw(self, archs: Sequence[Any]) -> np.ndarray:
        """Raw features of ``archs`` for prediction (float32 where the space can give it)."""
        space = get_space(self.space)
        if self.space == "ofa_mbv3":
            return space.encode_many(list(archs), dtype=np.float32)  # type: ignore[call-arg]
        return space.encode_many(list(archs))

    def predict_z(self, archs: Sequence[Any] | np.ndarray, return_var: bool = True
                  ) -> tuple[np.ndarray, np.ndarray]:
        """Per-member standardised log-latency means and variances, each (M, N)."""
        if not self.is_adapted:
            raise PredictorInputError(
                "adapt the predictor to a device first: q = p.adapt(archs, latencies_ms)"
            )
        x, inv = self._encode_unique(archs)
        n = x.shape[0]
        n_m = len(self.members_)
        means = np.empty((n_m, n))
        variances = np.zeros((n_m, n))
        chunk = 4096
        n_m_hid = n_m * self.hidden
        if self.cost_head:
            self._predict_z_cost(x, means, variances, return_var)
        elif self.gp_features in ("h", "hc") and not self.linear_rank:
            w_all, b_all = self._folded()
            emb = self.embedding_.astype(np.float32)
            hid = self.hidden
            bias0 = [b_all[i] + emb @ m["W0e"] for i, m in enumerate(self.members_)]
            heads = self._folded_heads()
            for lo in range(0, n, chunk):
                xc = x[lo:lo + chunk]
                pre = xc.astype(np.float32, copy=False) @ w_all
                extra = []  # the head's extra features, before their prior scales
                cc = self._cost(xc)
                if cc is not None:
                    extra.append(cc.astype(np.float64))
                if self.device_basis:
                    extra.append(pre[:, n_m_hid:].astype(np.float64) + self.basis_b_)
                ex = np.concatenate(extra, 1) if extra else None
                for i, (member, hd) in enumerate(zip(self.members_, heads)):
                    a = _relu(np.add(pre[:, i * hid:(i + 1) * hid], bias0[i]))
                    for k in range(1, self.n_layers + 1):
                        a = _relu(a @ member[f"W{k}"] + member[f"b{k}"])
                    z = (a @ hd["w"]).astype(np.float64) + float(hd["b"])
                    if ex is not None:
                        z += ex @ hd["c"]
                    means[i, lo:lo + chunk] = z
                    if return_var and "ph" in hd:
                        # k_q = phi_q phi_s', |phi_q|^2 = |a|^2 / H + |e s_e|^2 + 1; float64 from
                        # here (the variance is a small difference of two terms)
                        kq = (a @ hd["ph"]).astype(np.float64) + hd["p1"]
                        sq = np.einsum("ij,ij->i", a, a, dtype=np.float64) / hid + 1
                        if ex is not None:
                            kq += ex @ hd["pe"]
                            sq += (ex * ex) @ hd["se2"]
                        var = hd["sw2"] * sq - np.einsum("ij,ij->i", kq @ hd["kinv"], kq) + hd["sn2"]
                        variances[i, lo:lo + chunk] = np.maximum(var, 0)
        else:
            scale = getattr(self, "basis_scale_", 0.0)
            for lo in range(0, n, chunk):
                xc = x[lo:lo + chunk]
                cc = self._cost(xc)
                bc = self._basis(xc)
                if bc is not None:
                    bc = bc * (scale / np.sqrt(bc.shape[1]))
                xs = ((xc - self.x_mean_) / self.x_std_).astype(np.float32)
                for i, (member, st) in enumerate(zip(self.members_, self.support_state_)):
                    z, phi = self._base(member, xs, self.embedding_, cc, bc)
                    if st:
                        kq = phi @ st["phi_s"].T
                        z = z + kq @ st["alpha"]
                        if return_var:
                            var = (st["sw2"] * np.einsum("ij,ij->i", phi, phi)
                                   - np.einsum("ij,ij->i", kq @ st["kinv"], kq) + st["sn2"])
                            variances[i, lo:lo + chunk] = np.maximum(var, 0)
                    means[i, lo:lo + chunk] = z
        if inv is not None:
            means, variances = means[:, inv], variances[:, inv]
        return means, variances

    def predict(self, archs: Sequence[Any] | np.ndarray, return_std: bool = False
                ) -> np.ndarray | tuple[np.ndarray, np.ndarray]:
        """Predicted latency in ms (and its standard deviation in ms with ``return_std``)."""
        zm, zv = self.predict_z(archs, return_var=return_std)
        z = zm.mean(0)
        log_ms = self.mu_ + self.sd_ * z
        y = np.exp(log_ms)
        if not return_std:
            return y
        var_log = (self.sd_ * getattr(self, "std_scale_", 1.0)) ** 2 * (zv.mean(0) + zm.var(0))
        # std of a log-normal with that log-variance, around the median prediction
        std = y * np.sqrt(np.expm1(var_log))
        return y, std

    # ------------------------------------------------------------------ persistence
    def save(self, path: str) -> str:
        """Write the predictor (and its adaptation, if any) to ``path`` (.npz, no pickle)."""
        return save_predictor(self, path)
