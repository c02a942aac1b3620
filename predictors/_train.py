"""Meta-training of :class:`LatencyPredictor` members (torch, single-threaded)."""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from ._data import LatencyTable, protocol_split, train_rows
from ._embedding import hw_embedding
from ._metrics import spearman

__all__ = ["meta_train_member", "train_rows", "EMB_DIM"]

EMB_DIM = 12


def _net(d_in: int, hidden: int, n_layers: int, rank: int, gp_x: bool, gp_c: bool):  # noqa: ANN202
    import torch
    from torch import nn

    class Net(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.inp_x = nn.Linear(d_in, hidden)
            self.inp_e = nn.Linear(EMB_DIM, hidden, bias=False)
            self.hid = nn.ModuleList(nn.Linear(hidden, hidden) for _ in range(n_layers))
            self.out = nn.Linear(hidden, 1)
            self.log_sw = nn.Parameter(torch.tensor(0.0))
            self.log_sn = nn.Parameter(torch.tensor(math.log(0.1)))
            self.rank = rank
            self.gp_x = gp_x
            if gp_x:
                self.log_sx = nn.Parameter(torch.tensor(math.log(0.3)))
            self.gp_c = gp_c
            if gp_c:
                # prior scale of the closed-form head's slopes on standardised log-MACs/-params
                self.log_sc = nn.Parameter(torch.tensor(0.0))
            if rank:
                # low-rank linear path: z += (x A) . c(e); A x also joins the closed-form head
                self.lin = nn.Linear(d_in, rank, bias=False)
                self.coef = nn.Sequential(nn.Linear(EMB_DIM, 64), nn.ReLU(), nn.Linear(64, rank))
                self.log_sl = nn.Parameter(torch.tensor(0.0))

        def hidden(self, x: torch.Tensor, e: torch.Tensor) -> torch.Tensor:
            a = torch.relu(self.inp_x(x) + self.inp_e(e)[:, None, :])
            for layer in self.hid:
                a = torch.relu(layer(a))
            return a

        def base(self, x: torch.Tensor, e: torch.Tensor, c: torch.Tensor | None = None
                 ) -> tuple[torch.Tensor, torch.Tensor]:
            """(z0, phi) for features x (B, N, D), cost features c (B, N, 2) and embeddings e (B, E)."""
            h = self.hidden(x, e)
            z = self.out(h)[..., 0]
            parts = [h / math.sqrt(h.shape[-1])]
            if self.rank:
                lx = self.lin(x)
                z = z + (lx * self.coef(e)[:, None, :]).sum(-1)
                parts.append(lx * (torch.exp(self.log_sl) / math.sqrt(self.rank)))
            if self.gp_x:
                parts.append(x * (torch.exp(self.log_sx) / math.sqrt(x.shape[-1])))
            if self.gp_c:
                parts.append(c * (torch.exp(self.log_sc) / math.sqrt(c.shape[-1])))
            parts.append(torch.ones_like(h[..., :1]))
            return z, torch.cat(parts, -1)

        def forward(self, xs: torch.Tensor, zs: torch.Tensor, xq: torch.Tensor, e: torch.Tensor,
                    gp: bool, cs: torch.Tensor | None = None, cq: torch.Tensor | None = None) -> torch.Tensor:
            zq, phiq = self.base(xq, e, cq)
            if not gp:
                return zq
            zs0, phis = self.base(xs, e, cs)
            sw2 = torch.exp(2 * self.log_sw)
            sn2 = torch.exp(2 * self.log_sn)
            k = sw2 * phis @ phis.transpose(1, 2) + sn2 * torch.eye(phis.shape[1])
            alpha = torch.linalg.solve(k, (zs - zs0)[..., None])
            return zq + (sw2 * phiq @ phis.transpose(1, 2) @ alpha)[..., 0]

    return Net()


def _to_numpy(net) -> dict[str, np.ndarray]:  # noqa: ANN001
    w: dict[str, np.ndarray] = {
        "W0x": net.inp_x.weight.detach().numpy().T.copy(),
        "b0": net.inp_x.bias.detach().numpy().copy(),
        "W0e": net.inp_e.weight.detach().numpy().T.copy(),
        "w_out": net.out.weight.detach().numpy()[0].copy(),
        "b_out": net.out.bias.detach().numpy()[0:1].copy(),
        "log_sw": net.log_sw.detach().numpy().reshape(1).copy(),
        "log_sn": net.log_sn.detach().numpy().reshape(1).copy(),
    }
    if net.rank:
        w["A"] = net.lin.weight.detach().numpy().T.copy()
        w["C0"] = net.coef[0].weight.detach().numpy().T.copy()
        w["c0"] = net.coef[0].bias.detach().numpy().copy()
        w["C1"] = net.coef[2].weight.detach().numpy().T.copy()
        w["c1"] = net.coef[2].bias.detach().numpy().copy()
        w["log_sl"] = net.log_sl.detach().numpy().reshape(1).copy()
    if net.gp_x:
        w["log_sx"] = net.log_sx.detach().numpy().reshape(1).copy()
    if net.gp_c:
        w["log_sc"] = net.log_sc.detach().numpy().reshape(1).copy()
    for i, layer in enumerate(net.hid, start=1):
        w[f"W{i}"] = layer.weight.detach().numpy().T.copy()
        w[f"b{i}"] = layer.bias.detach().numpy().copy()
    return {k: v.astype(np.float32) for k, v in w.items()}


def meta_train_member(
    model: Any,
    table: LatencyTable,
    devices: Sequence[str],
    valid_devices: Sequence[str],
    seed: int,
    *,
    member: int = 0,
    callback: Callable[[int, int, float], None] | None = None,
) -> tuple[dict[str, np.ndarray], float]:
    """Meta-train one ensemble member; returns its numpy weights and best meta-valid Spearman."""
    import torch

    torch.set_num_threads(1)
    torch.manual_seed(seed)
    rng = np.random.default_rng(seed)
    gp = model.adapt_head == "gp"
    x_all = ((table.features() - model.x_mean_) / model.x_std_).astype(np.float32)
    gp_c = model.gp_features == "hc"
    c_all = model._cost(table.features()) if gp_c else np.zeros((x_all.shape[0], 0), np.float32)
    ref = table.ref_index
    pool = train_rows(table, model.train_rows)
    lat = np.stack([table.device(d) for d in devices])  # (K, N)
    lat = np.maximum(lat, 1e-3)
    # scale-free latencies for mixtures: divide by the geometric mean on the references
    gmean = np.exp(np.log(lat[:, ref]).mean(1, keepdims=True))
    lat_n = lat / gmean
    xs_t = torch.from_numpy(x_all[ref])
    cs_t = torch.from_numpy(c_all[ref])
    net = _net(x_all.shape[1], model.hidden, model.n_layers, model.linear_rank,
               model.gp_features == "hx", gp_c)
    opt = torch.optim.AdamW(net.parameters(), lr=model.lr, weight_decay=model.weight_decay)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=model.lr, total_steps=model.n_steps,
                                                pct_start=min(0.5, max(0.1, 2.0 / model.n_steps)))
    n_real = len(devices)
    b = model.batch_devices
    n_mix = int(round(b * model.mix_devices))

    # validation data
    val = []
    for d in valid_devices:
        y = table.device(d)
        _, q = protocol_split(table, d)
        val.append((y[ref], q, y[q]))

    def evaluate() -> float:
        if not val:
            return float("nan")
        with torch.no_grad():
            out = []
            for yref, q, yq in val:
                emb, mu, sd = hw_embedding(yref, model.use_level)
                zs = (np.log(yref) - mu) / sd
                pred = net(xs_t[None], torch.from_numpy(zs[None]).float(),
                           torch.from_numpy(x_all[q][None]), torch.from_numpy(emb[None]).float(), gp,
                           cs_t[None], torch.from_numpy(c_all[q][None]))
                out.append(spearman(yq, pred[0].numpy()))
        return float(np.mean(out))

    best = (-np.inf, _to_numpy(net))
    eval_every = max(1, model.n_steps // 10)
    for step in range(1, model.n_steps + 1):
        # a batch of devices: real ones (cycled) and random mixtures
        real = rng.choice(n_real, size=b - n_mix, replace=(b - n_mix) > n_real)
        ys = [lat[real]]
        if n_mix:
            alpha = rng.dirichlet(np.full(n_real, 0.5), size=n_mix)
            if model.mix_space == "log":
                ys.append(np.exp(alpha @ np.log(lat_n)))
            else:
                ys.append(alpha @ lat_n)
        y = np.concatenate(ys, 0)  # (B, N)
        yref = y[:, ref]
        emb, mu, sd = hw_embedding(yref, model.use_level)
        qi = rng.choice(pool, size=(y.shape[0], model.n_query))
        yq = np.take_along_axis(y, qi, 1)
        med = np.median(y[:, pool], 1, keepdims=True)
        mask = (yq > 0.1 * med).astype(np.float32)
        zq = (np.log(yq) - mu[:, None]) / sd[:, None]
        zs = (np.log(yref) - mu[:, None]) / sd[:, None]
        pred = net(xs_t[None].expand(y.shape[0], -1, -1), torch.from_numpy(zs).float(),
                   torch.from_numpy(x_all[qi]), torch.from_numpy(emb).float(), gp,
                   cs_t[None].expand(y.shape[0], -1, -1), torch.from_numpy(c_all[qi]))
        err = (pred - torch.from_numpy(zq).float()) ** 2 * torch.from_numpy(mask)
        loss = err.sum() / max(float(mask.sum()), 1.0)
        opt.zero_grad()
        loss.backward()
        opt.step()
        sched.step()
        if step % eval_every == 0 or step == model.n_steps:
            score = evaluate() if val else -float(loss)
            if score > best[0]:
                best = (score, _to_numpy(net))
            if callback is not None:
                callback(member, step, score)
            elif model.verbose:
                print(f"member {member} step {step} loss {float(loss):.4f} valid {score:.4f}", flush=True)
    return best[1], float(best[0])
