"""Baseline latency predictors with the same interface as :class:`LatencyPredictor`.

Each has ``fit(table)`` (meta-fit; a no-op where nothing is learnt across devices),
``adapt(archs, latencies_ms)`` returning a new adapted predictor, and
``predict(archs, return_std=False)`` in milliseconds.
"""

from __future__ import annotations

import copy
import functools
import math
import warnings
from collections.abc import Sequence
from typing import Any

import numpy as np

from search_spaces import get_space

from ._cost import _nb201_table, cost_features
from ._data import LatencyTable, flops_params, load_latency_table
from ._errors import PredictorInputError
from ._model import check_samples, hw_embedding

__all__ = ["AnalyticFit", "FlopsProxy", "NearestDevice", "SampleGP", "MetaSGD"]


class _Base:
    space: str

    def fit(self, table: LatencyTable | None = None) -> _Base:
        """Meta-fit (nothing to learn across devices for this baseline)."""
        return self

    @property
    def is_adapted(self) -> bool:
        return hasattr(self, "support_y_")

    def _check_adapted(self) -> None:
        if not self.is_adapted:
            raise PredictorInputError("adapt the predictor to a device first: q = p.adapt(archs, latencies_ms)")

    def _encode(self, archs: Sequence[Any] | np.ndarray) -> np.ndarray:
        if isinstance(archs, np.ndarray) and archs.dtype.kind == "f" and archs.ndim == 2:
            return archs
        return get_space(self.space).encode_many(list(archs))

    def adapt(self, archs: Sequence[Any], latencies_ms: Sequence[float] | np.ndarray) -> Any:
        """A new predictor fitted to a device's samples; ``self`` is unchanged."""
        archs = list(archs)
        y = check_samples(latencies_ms, len(archs))
        new = copy.copy(self)
        new.support_archs_ = archs
        new.support_y_ = y
        new._adapt(self._encode(archs), y)
        return new

    def _adapt(self, x: np.ndarray, y: np.ndarray) -> None:
        raise NotImplementedError


class FlopsProxy(_Base):
    """log-latency = a.log(MACs) + b.log(params) + c, ridge-fitted on the device's samples.

    Args:
        space: search-space name.
        alpha: ridge penalty on the slopes.
    """

    def __init__(self, space: str = "nasbench201", *, alpha: float = 1e-3) -> None:
        self.space = space
        self.alpha = alpha

    def _design(self, x: np.ndarray) -> np.ndarray:
        fp = np.log(np.maximum(flops_params(self.space, x), 1e-6))
        return np.concatenate([fp, np.ones((x.shape[0], 1))], 1)

    def _adapt(self, x: np.ndarray, y: np.ndarray) -> None:
        a = self._design(x)
        reg = self.alpha * np.diag([1.0, 1.0, 0.0])
        self.coef_ = np.linalg.solve(a.T @ a + reg, a.T @ np.log(y))
        resid = np.log(y) - a @ self.coef_
        self.resid_std_ = float(np.sqrt(np.mean(resid**2) * len(y) / max(len(y) - 3, 1)))

    def predict(self, archs: Sequence[Any] | np.ndarray, return_std: bool = False) -> Any:
        """Predicted ms (and std in ms)."""
        self._check_adapted()
        y = np.exp(self._design(self._encode(archs)) @ self.coef_)
        return (y, y * math.sqrt(math.expm1(self.resid_std_**2))) if return_std else y


@functools.lru_cache(maxsize=4)
def _cost_scaling(space: str, n: int = 4096) -> tuple[np.ndarray, np.ndarray]:
    """Mean and std of the analytic cost features over ``n`` uniformly drawn architectures
    (seed 0; NAS-Bench-201: all 15,625 cells)."""
    if space == "nasbench201":
        c = _nb201_table()
    else:
        sp = get_space(space)
        rng = np.random.default_rng(0)
        c = cost_features(space, [sp.random_arch(rng) for _ in range(n)])
    std = c.std(0)
    return c.mean(0), np.where(std > 1e-9 * np.maximum(np.abs(c.mean(0)), 1.0), std, 1.0)


class AnalyticFit(_Base):
    """Bayesian linear regression of log-latency on the analytic cost features, from the samples alone.

    Features: :func:`predictors.cost_features` (per-operation-type MACs, parameters, activation
    traffic, operation counts), standardised over uniformly drawn architectures of the space; prior
    on the weights isotropic with zero mean (variance ``scale^2 / F``), a broad prior on the
    intercept; the prior scale and the noise level are chosen by the samples' marginal likelihood
    over ``scales`` x ``noises`` (log-latency standardised by the samples' mean and std). Nothing
    is learnt across devices.

    Args:
        space: search-space name.
        scales: prior scales tried.
        noises: noise standard deviations tried (standardised log-latency).
    """

    def __init__(self, space: str = "nasbench201", *, scales: Sequence[float] = (0.1, 0.3, 1.0, 3.0, 10.0),
                 noises: Sequence[float] = (0.03, 0.1, 0.2, 0.4)) -> None:
        self.space = space
        self.scales = tuple(scales)
        self.noises = tuple(noises)

    def _design(self, x: np.ndarray) -> np.ndarray:
        mean, std = _cost_scaling(self.space)
        return (cost_features(self.space, x) - mean) / std

    def _adapt(self, x: np.ndarray, y: np.ndarray) -> None:
        a = self._design(x)
        n, f = a.shape
        ly = np.log(y)
        self.mu_ = float(ly.mean())
        self.sd_ = float(max(ly.std(), 1e-3))
        z = (ly - self.mu_) / self.sd_
        best = None
        for scale in self.scales:
            for noise in self.noises:
                k = (scale * scale / f) * a @ a.T + 1.0 + noise * noise * np.eye(n)
                kinv = np.linalg.inv(k)
                alpha = kinv @ z
                ev = float(-0.5 * z @ alpha - 0.5 * np.linalg.slogdet(k)[1])
                if best is None or ev > best[0]:
                    best = (ev, scale, noise, kinv, alpha)
        assert best is not None
        self.log_evidence_, self.scale_, self.noise_, kinv, alpha = best
        s2 = self.scale_**2 / f
        self.coef_ = s2 * a.T @ alpha
        self.intercept_ = float(alpha.sum())
        self._a_s, self._kinv = a, kinv

    def predict(self, archs: Sequence[Any] | np.ndarray, return_std: bool = False) -> Any:
        """Predicted ms (and std in ms)."""
        self._check_adapted()
        a = self._design(self._encode(archs))
        z = a @ self.coef_ + self.intercept_
        y = np.exp(self.mu_ + self.sd_ * z)
        if not return_std:
            return y
        s2 = self.scale_**2 / a.shape[1]
        kq = s2 * a @ self._a_s.T + 1.0
        var = s2 * np.einsum("ij,ij->i", a, a) + 1.0 - np.einsum("ij,ij->i", kq @ self._kinv, kq) + self.noise_**2
        std = y * np.sqrt(np.expm1(self.sd_**2 * np.maximum(var, 0)))
        return y, std


class NearestDevice(_Base):
    """The meta-train device whose latencies on the samples rank-match best, rescaled in log space.

    Predicts only architectures of the vendored latency table (it looks their latency up).

    Args:
        space: search-space name.
    """

    def __init__(self, space: str = "nasbench201") -> None:
        self.space = space

    def fit(self, table: LatencyTable | None = None, devices: Sequence[str] | None = None) -> NearestDevice:
        """Remember the meta-train devices' latency tables."""
        table = table or load_latency_table(self.space)
        self.devices_ = list(devices) if devices is not None else table.splits["meta_train"]
        self.latency_ = np.stack([table.device(d) for d in self.devices_])
        space = get_space(self.space)
        self.index_ = {space.format(a): i for i, a in enumerate(table.archs)}
        return self

    def _rows(self, archs: Sequence[Any]) -> np.ndarray:
        space = get_space(self.space)
        rows = []
        for a in archs:
            k = space.format(a)
            if k not in self.index_:
                raise PredictorInputError(f"NearestDevice predicts only table architectures; {k!r} is not one")
            rows.append(self.index_[k])
        return np.asarray(rows)

    def _adapt(self, x: np.ndarray, y: np.ndarray) -> None:
        from scipy.stats import spearmanr

        rows = self._rows(self.support_archs_)
        sims = [spearmanr(self.latency_[k, rows], y).statistic for k in range(len(self.devices_))]
        k = int(np.nanargmax(sims))
        self.device_ = self.devices_[k]
        lx = np.log(np.maximum(self.latency_[k, rows], 1e-3))
        a = np.stack([lx, np.ones_like(lx)], 1)
        self.coef_ = np.linalg.lstsq(a, np.log(y), rcond=None)[0]
        self.resid_std_ = float(np.std(np.log(y) - a @ self.coef_))

    def predict(self, archs: Sequence[Any], return_std: bool = False) -> Any:
        """Predicted ms (and std in ms)."""
        self._check_adapted()
        k = self.devices_.index(self.device_)
        lx = np.log(np.maximum(self.latency_[k, self._rows(list(archs))], 1e-3))
        y = np.exp(self.coef_[0] * lx + self.coef_[1])
        return (y, y * math.sqrt(math.expm1(self.resid_std_**2))) if return_std else y


class SampleGP(_Base):
    """A Gaussian process on the architecture features, fitted to the device's samples alone.

    Kernel: constant x RBF + linear (dot product) + white noise on standardised features
    (log-latency target); hyperparameters by marginal likelihood.

    Args:
        space: search-space name.
        seed: seed of the optimiser restarts.
    """

    def __init__(self, space: str = "nasbench201", *, seed: int = 0) -> None:
        self.space = space
        self.seed = seed

    def _adapt(self, x: np.ndarray, y: np.ndarray) -> None:
        from sklearn.gaussian_process import GaussianProcessRegressor
        from sklearn.gaussian_process.kernels import RBF, ConstantKernel, DotProduct, WhiteKernel

        table = load_latency_table(self.space)
        xa = table.features()[: table.n_train_pool]
        self.mean_ = xa.mean(0)
        sd = xa.std(0)
        self.std_ = np.where(sd > 1e-8, sd, 1.0)
        xs = (x - self.mean_) / self.std_
        d = xs.shape[1]
        kernel = (ConstantKernel(1.0) * RBF(length_scale=math.sqrt(d))
                  + ConstantKernel(0.1) * DotProduct(sigma_0=1.0) + WhiteKernel(0.01))
        self.gp_ = GaussianProcessRegressor(kernel, normalize_y=True, random_state=self.seed,
                                            n_restarts_optimizer=2)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # bound warnings of the marginal-likelihood optimiser
            self.gp_.fit(xs, np.log(y))

    def predict(self, archs: Sequence[Any] | np.ndarray, return_std: bool = False) -> Any:
        """Predicted ms (and std in ms)."""
        self._check_adapted()
        xs = (self._encode(archs) - self.mean_) / self.std_
        m, s = self.gp_.predict(xs, return_std=True)
        y = np.exp(m)
        return (y, y * np.sqrt(np.expm1(s**2))) if return_std else y


class MetaSGD(_Base):
    """Meta-SGD (HELP without the hardware embedding): an MLP on architecture features whose
    initial weights and per-parameter inner learning rates are meta-learnt so that a few gradient
    steps on a device's samples adapt it. Predicts ``(log y - mu) / sd`` with ``mu, sd`` the mean
    and std of the samples' log-latencies (so the absolute scale comes from the samples).

    Args:
        space: search-space name.
        hidden: hidden width.
        inner_steps: gradient steps of adaptation.
        inner_lr: initial inner learning rate (learned per parameter).
        n_steps: meta-training steps.
        batch_devices: devices per meta-batch.
        n_query: query architectures per device.
        lr: outer Adam learning rate.
        first_order: drop second-order terms (MAML-FO) when True.
        learn_lr: learn per-parameter inner rates (Meta-SGD) or keep them fixed (MAML).
        seed: torch / numpy seed.
    """

    def __init__(self, space: str = "nasbench201", *, hidden: int = 100, inner_steps: int = 2,
                 inner_lr: float = 1e-2, n_steps: int = 800, batch_devices: int = 8, n_query: int = 128,
                 lr: float = 1e-3, first_order: bool = False, learn_lr: bool = True, seed: int = 0) -> None:
        self.space = space
        self.hidden = hidden
        self.inner_steps = inner_steps
        self.inner_lr = inner_lr
        self.n_steps = n_steps
        self.batch_devices = batch_devices
        self.n_query = n_query
        self.lr = lr
        self.first_order = first_order
        self.learn_lr = learn_lr
        self.seed = seed

    # functional MLP ------------------------------------------------------------
    @staticmethod
    def _forward(params: list[Any], x: Any) -> Any:
        import torch

        a = x
        for i in range(0, len(params) - 2, 2):
            a = torch.relu(a @ params[i] + params[i + 1])
        return (a @ params[-2] + params[-1])[..., 0]

    def _inner(self, params: list[Any], lrs: list[Any], xs: Any, zs: Any, create_graph: bool) -> list[Any]:
        import torch

        for _ in range(self.inner_steps):
            loss = ((self._forward(params, xs) - zs) ** 2).mean()
            grads = torch.autograd.grad(loss, params, create_graph=create_graph)
            params = [p - lr * g for p, lr, g in zip(params, lrs, grads)]
        return params

    def fit(self, table: LatencyTable | None = None, devices: Sequence[str] | None = None) -> MetaSGD:
        """Meta-train on the meta-train devices' train pools (support = the 10 references)."""
        import torch

        torch.set_num_threads(1)
        torch.manual_seed(self.seed)
        rng = np.random.default_rng(self.seed)
        table = table or load_latency_table(self.space)
        devices = list(devices) if devices is not None else table.splits["meta_train"]
        x = table.features()
        pool = np.arange(table.n_train_pool)
        self.x_mean_ = x[pool].mean(0)
        sd = x[pool].std(0)
        self.x_std_ = np.where(sd > 1e-8, sd, 1.0)
        xt = torch.from_numpy(((x - self.x_mean_) / self.x_std_).astype(np.float32))
        lat = np.maximum(np.stack([table.device(d) for d in devices]), 1e-3)
        ref = table.ref_index
        dims = [x.shape[1], self.hidden, self.hidden, 1]
        params = []
        for a, b in zip(dims[:-1], dims[1:]):
            params.append(torch.nn.Parameter(torch.randn(a, b) * math.sqrt(2.0 / a)))
            params.append(torch.nn.Parameter(torch.zeros(b)))
        lrs = [torch.nn.Parameter(torch.full_like(p, self.inner_lr)) for p in params]
        opt = torch.optim.Adam(params + (lrs if self.learn_lr else []), lr=self.lr)
        for _ in range(self.n_steps):
            devs = rng.choice(len(devices), size=self.batch_devices)
            loss = 0.0
            for k in devs:
                y = lat[k]
                _, mu, s = hw_embedding(y[ref])
                qi = rng.choice(pool, size=self.n_query)
                keep = y[qi] > 0.1 * np.median(y[pool])
                qi = qi[keep]
                zs = torch.from_numpy(((np.log(y[ref]) - mu) / s).astype(np.float32))
                zq = torch.from_numpy(((np.log(y[qi]) - mu) / s).astype(np.float32))
                fast = self._inner(params, lrs, xt[ref], zs, create_graph=not self.first_order)
                loss = loss + ((self._forward(fast, xt[qi]) - zq) ** 2).mean()
            opt.zero_grad()
            (loss / len(devs)).backward()
            opt.step()
        self.params_ = [p.detach().numpy().copy() for p in params]
        self.lrs_ = [p.detach().numpy().copy() for p in lrs]
        return self

    def _adapt(self, x: np.ndarray, y: np.ndarray) -> None:
        import torch

        if not hasattr(self, "params_"):
            raise PredictorInputError("MetaSGD is not meta-trained; call fit() first")
        self.mu_ = float(np.log(y).mean())
        self.sd_ = float(max(np.log(y).std(), 1e-3))
        xs = torch.from_numpy(((x - self.x_mean_) / self.x_std_).astype(np.float32))
        zs = torch.from_numpy(((np.log(y) - self.mu_) / self.sd_).astype(np.float32))
        params = [torch.from_numpy(p).requires_grad_(True) for p in self.params_]
        lrs = [torch.from_numpy(p) for p in self.lrs_]
        fast = self._inner(params, lrs, xs, zs, create_graph=False)
        self.fast_ = [p.detach().numpy() for p in fast]

    def predict(self, archs: Sequence[Any] | np.ndarray, return_std: bool = False) -> Any:
        """Predicted ms (``return_std`` gives zeros: Meta-SGD has no uncertainty)."""
        self._check_adapted()
        a = ((self._encode(archs) - self.x_mean_) / self.x_std_).astype(np.float32)
        p = self.fast_
        for i in range(0, len(p) - 2, 2):
            a = np.maximum(a @ p[i] + p[i + 1], 0)
        z = (a @ p[-2] + p[-1])[:, 0]
        y = np.exp(self.mu_ + self.sd_ * z.astype(np.float64))
        return (y, np.zeros_like(y)) if return_std else y
