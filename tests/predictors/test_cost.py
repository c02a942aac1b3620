"""Analytic cost features, the AnalyticFit baseline and the predictor's analytic cost head."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

import predictors
from predictors import ArtefactError, UnknownSpaceError
from search_spaces import get_space
from search_spaces._fbnet_cost import fbnet_cost

TINY = dict(hidden=16, n_layers=1, n_members=2, n_steps=40, batch_devices=6, n_query=32, lr=3e-3)


def _col(space: str, name: str) -> int:
    return predictors.cost_feature_names(space).index(name)


def _nb(cell: str) -> dict[str, float]:
    row = predictors.cost_features("nasbench201", [cell])[0]
    return dict(zip(predictors.cost_feature_names("nasbench201"), row))


def test_nasbench201_skip_and_none_cell_costs_nothing() -> None:
    # edge 1<-0 is a skip into a node that never reaches the output (dead); 3<-0 is a live skip
    f = _nb("|skip_connect~0|+|none~0|none~1|+|skip_connect~0|none~1|none~2|")
    assert f["n_skip"] == 1 and f["n_dead"] == 1 and f["n_none"] == 4 and f["depth"] == 1 and f["n_add"] == 0
    assert f["macs"] == f["params"] == f["act"] == 0
    assert all(v == 0 for k, v in f.items() if k.startswith(("macs_", "params_", "act_")))


def test_nasbench201_conv1x1_vs_conv3x3() -> None:
    one = _nb("|none~0|+|none~0|none~1|+|nor_conv_1x1~0|none~1|none~2|")
    three = _nb("|none~0|+|none~0|none~1|+|nor_conv_3x3~0|none~1|none~2|")
    cchw = 5 * (16 * 16 * 32 * 32 + 32 * 32 * 16 * 16 + 64 * 64 * 8 * 8)  # 15 cells: C*C*H*W
    assert one["macs_conv1x1"] == pytest.approx(cchw / 1e6) and one["macs_conv3x3"] == 0
    assert three["macs_conv3x3"] == pytest.approx(9 * cchw / 1e6) and three["macs_conv1x1"] == 0
    assert one["params_conv1x1"] == pytest.approx(5 * (16 * 16 + 32 * 32 + 64 * 64 + 2 * (16 + 32 + 64)) / 1e6)
    assert three["params_conv3x3"] == pytest.approx(5 * (9 * (16 * 16 + 32 * 32 + 64 * 64) + 2 * (16 + 32 + 64)) / 1e6)
    assert one["act_conv1x1"] == three["act_conv3x3"] > 0  # same tensors, different kernels
    assert one["n_conv1x1"] == three["n_conv3x3"] == 1 and one["depth"] == 1
    # two paths into the output node: one add; a chain: depth 3
    two = _nb("|nor_conv_1x1~0|+|none~0|none~1|+|nor_conv_1x1~0|avg_pool_3x3~1|none~2|")
    assert two["n_add"] == 1 and two["depth"] == 2 and two["n_avg_pool"] == 1
    chain = _nb("|nor_conv_3x3~0|+|none~0|skip_connect~1|+|none~0|none~1|avg_pool_3x3~2|")
    assert chain["depth"] == 3 and chain["n_dead"] == 0


def test_fbnet_costs_agree_with_the_network_accounting() -> None:
    """MACs and weights of the 22 searchable layers equal search_spaces' per-network figures minus
    the parts every architecture shares (stem, 1x1 head, classifier)."""
    fixed_macs = 32 * 32 * 3 * 16 * 9 + 4 * 4 * 352 * 1504 + 1504 * 100
    fixed_w = 3 * 16 * 9 + 352 * 1504 + 1504 * 100
    rng = np.random.default_rng(0)
    sp = get_space("fbnet")
    archs = [sp.random_arch(rng) for _ in range(20)] + ["8" * 22, "0" * 22, "7" * 22, "1" * 22]
    f = predictors.cost_features("fbnet", archs)
    for a, row in zip(archs, f):
        c = fbnet_cost(sp.op_indices(a))
        assert row[_col("fbnet", "macs")] * 1e6 == pytest.approx(c.macs - fixed_macs, rel=1e-9)
        assert row[_col("fbnet", "params")] * 1e6 == pytest.approx(c.weights - fixed_w, rel=1e-9)
    skip = dict(zip(predictors.cost_feature_names("fbnet"), f[-4]))
    assert skip["n_skip"] == 22 and skip["macs_pointwise"] == skip["macs_dw3x3"] == 0 and skip["macs_skip_proj"] > 0
    # a 3x3 and a 5x5 depthwise block (expansion 1) at the same layer: only the depthwise MACs differ, 25/9
    k3 = predictors.cost_features("fbnet", ["8" * 10 + "0" + "8" * 11])[0]
    k5 = predictors.cost_features("fbnet", ["8" * 10 + "4" + "8" * 11])[0]
    assert k5[_col("fbnet", "macs_dw5x5")] / k3[_col("fbnet", "macs_dw3x3")] == pytest.approx(25 / 9)
    assert k3[_col("fbnet", "macs_pointwise")] == k5[_col("fbnet", "macs_pointwise")] > 0


@pytest.mark.parametrize("space", predictors.SPACES)
def test_cost_features_from_archs_equal_from_encoding(space: str) -> None:
    sp = get_space(space)
    rng = np.random.default_rng(1)
    archs = [sp.random_arch(rng) for _ in range(64)]
    a = predictors.cost_features(space, archs)
    b = predictors.cost_features(space, sp.encode_many(archs))
    assert a.shape == (64, len(predictors.cost_feature_names(space))) and np.isfinite(a).all()
    np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-9)
    assert (a >= 0).all()
    with pytest.raises(UnknownSpaceError):
        predictors.cost_features("resnet", archs)


def test_ofa_costs_grow_with_resolution() -> None:
    arch = {"ks": [3] * 20, "e": [3] * 20, "d": [2] * 5, "r": 128}
    small = predictors.cost_features("ofa_mbv3", [arch])[0]
    big = predictors.cost_features("ofa_mbv3", [dict(arch, r=224)])[0]
    m = _col("ofa_mbv3", "macs")
    assert big[m] > 2.5 * small[m] and big[_col("ofa_mbv3", "params")] == small[_col("ofa_mbv3", "params")]
    assert small[_col("ofa_mbv3", "n_layers")] == 10 and small[_col("ofa_mbv3", "n_k3")] == 10


def test_analytic_fit_recovers_a_linear_in_features_device() -> None:
    """A device whose log-latency is exactly linear in two of the analytic features is ranked
    near-perfectly by the 10-sample AnalyticFit (MACs alone cannot)."""
    t = predictors.load_latency_table("fbnet")
    c = predictors.cost_features("fbnet", t.features())
    y = np.exp(0.02 * c[:, _col("fbnet", "n_convs")] + 0.05 * c[:, _col("fbnet", "act_expanded")])
    _, query = predictors.protocol_split(t, "titanx_1")
    archs = [t.archs[i] for i in query]
    q = predictors.AnalyticFit("fbnet").adapt(t.ref_archs, y[t.ref_index])
    pred, std = q.predict(archs, return_std=True)
    assert predictors.all_metrics(y[query], pred)["spearman"] > 0.97 and np.all(std > 0)
    flops = predictors.FlopsProxy("fbnet").adapt(t.ref_archs, y[t.ref_index]).predict(archs)
    assert predictors.all_metrics(y[query], flops)["spearman"] < 0.97


@pytest.fixture(scope="module")
def tiny_fb() -> predictors.LatencyPredictor:
    t = predictors.load_latency_table("fbnet")
    return predictors.LatencyPredictor("fbnet", seed=0, **TINY).fit(t)


def test_cost_head_predicts_an_analytic_device_like_one(tiny_fb: predictors.LatencyPredictor) -> None:
    """A device exactly linear in the analytic features, with weights near the meta-train devices'
    average: the samples' likelihood chooses the analytic hypothesis and the ranking is near perfect,
    however little the (tiny) network learnt."""
    t = predictors.load_latency_table("fbnet")
    p = tiny_fb
    assert p.cost_head and p.has_cost_prior and p.ana_prior_s_.shape == (20, 20)
    a = p._ana(t.features())
    y = np.exp(1.0 + 0.4 * (a[:, :-2] @ p.ana_prior_m_))
    _, query = predictors.protocol_split(t, "titanx_1")
    x = t.features()[query]
    q = p.adapt(t.ref_archs, y[t.ref_index])
    assert q.cost_hypothesis_["lam"] == 0
    pred, std = q.predict(x, return_std=True)
    assert predictors.all_metrics(y[query], pred)["spearman"] > 0.99 and np.all(std > 0)
    np.testing.assert_allclose(q.predict(x), pred, rtol=1e-9)
    # a real device the network fits: the network hypothesis can still win (it does on titanx_1 here
    # or not; either way the prediction is the chosen hypothesis' and finite)
    r = p.adapt(t.ref_archs, t.device("titanx_1")[t.ref_index])
    assert np.isfinite(r.log_evidence_) and np.all(np.isfinite(r.predict(x)))


def _direct_family(q: predictors.LatencyPredictor, x: np.ndarray, states: list) -> tuple[np.ndarray, np.ndarray]:
    """Means and variances of one hypothesis family from the kernel formulas, float64."""
    xs, cs, _ = q._features(x)
    xr, cr, _ = q._features(q.support_archs_)
    a_q, a_s = q._ana(x), q._ana(q._encode_raw(q.support_archs_))
    means, variances = [], []
    for m, st in zip(q.members_, states):
        m64 = {k: v.astype(np.float64) for k, v in m.items()}
        s_w, sb2, sn2, sw2 = st["s_w"], float(st["sb2"]), float(st["sn2"]), float(st["sw2"])
        kq = a_q @ s_w @ a_s.T + sb2
        kqq = np.einsum("ij,jk,ik->i", a_q, s_w, a_q) + sb2
        mean = a_q @ (st["wc"] - st["g"] @ st["alpha"])  # the prior mean's analytic part
        if float(st["lam"]):
            z, phi = q._base(m64, xs.astype(np.float64), q.embedding_,
                             None if cs is None else cs.astype(np.float64))
            _, phis = q._base(m64, xr.astype(np.float64), q.embedding_,
                              None if cr is None else cr.astype(np.float64))
            kq = kq + sw2 * phi @ phis.T
            kqq = kqq + sw2 * (phi * phi).sum(1)
            mean = mean + z
        means.append(mean + kq @ st["alpha"])
        variances.append(kqq - np.einsum("ij,ij->i", kq @ st["kinv"], kq) + sn2)
    return np.array(means), np.array(variances)


def _direct(q: predictors.LatencyPredictor, x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The mixture over the families: weighted mean, weighted second moment minus its square."""
    m1, m2 = 0.0, 0.0
    for weight, _, _, states in q.cost_mixture_:
        m, v = _direct_family(q, x, states)
        m1 = m1 + weight * m
        m2 = m2 + weight * (v + m * m)
    return m1, m2 - m1 * m1


def test_cost_head_fast_path_equals_direct(tiny_fb: predictors.LatencyPredictor,
                                           monkeypatch: pytest.MonkeyPatch) -> None:
    """Both kinds of hypothesis: the folded fast path gives the kernel formulas' means and variances."""
    monkeypatch.setattr(predictors._model, "COST_MIN_WEIGHT", 0.0)  # every family, as _direct
    t = predictors.load_latency_table("fbnet")
    x = t.features()[4000:4200].astype(np.float64)
    a = tiny_fb._ana(t.features())
    devices = {"analytic": np.exp(1.0 + 0.4 * (a[:, :-2] @ tiny_fb.ana_prior_m_))}
    for d in t.splits["meta_valid"]:
        devices[d] = t.device(d)
    seen = set()
    for y in devices.values():
        q = tiny_fb.adapt(t.ref_archs, y[t.ref_index])
        seen.add(q.cost_hypothesis_["lam"])
        assert abs(sum(w for w, *_ in q.cost_mixture_) - 1) < 1e-9 and len(q.cost_mixture_) == 4
        assert set(q.cost_weights_) == {"network", "meta", "flat", "macs"}
        zm, zv = q.predict_z(x)
        dm, dv = _direct(q, x)
        np.testing.assert_allclose(zm, dm, atol=1e-4)
        np.testing.assert_allclose(zv, dv, rtol=1e-3, atol=1e-6)
    assert 0 in seen


def test_light_families_are_left_out(tiny_fb: predictors.LatencyPredictor) -> None:
    """A family lighter than COST_MIN_WEIGHT is not computed; the prediction moves by at most its weight."""
    t = predictors.load_latency_table("fbnet")
    a = tiny_fb._ana(t.features())
    y = np.exp(1.0 + 0.4 * (a[:, :-2] @ tiny_fb.ana_prior_m_))
    q = tiny_fb.adapt(t.ref_archs, y[t.ref_index])
    assert q.cost_weights_["network"] < predictors._model.COST_MIN_WEIGHT
    assert not any(hd["netk"] for _, heads in q._cost_heads() for hd in heads)
    assert abs(sum(w for w, _ in q._cost_heads()) - 1) < 1e-12


def test_cost_head_save_load_and_damage(tiny_fb: predictors.LatencyPredictor, tmp_path: Path) -> None:
    t = predictors.load_latency_table("fbnet")
    q = tiny_fb.adapt(t.ref_archs, t.device("titanx_32")[t.ref_index])
    path = Path(q.save(tmp_path / "q.npz"))
    with np.load(path, allow_pickle=False) as z:
        arrays = {k: z[k] for k in z.files}
    meta = json.loads(bytes(arrays["__meta__"]).decode())
    assert meta["format_version"] == 5 == predictors.FORMAT_VERSION and meta["params"]["cost_head"]
    back = predictors.load_file(path)
    archs = t.archs[:100]
    np.testing.assert_allclose(back.predict(archs), q.predict(archs), rtol=1e-9)
    assert back.cost_hypothesis_ == q.cost_hypothesis_
    # a file with another number of cost features (another version's): one line saying to re-train
    for k in ("ana_mean", "ana_std", "ana_prior_m"):
        arrays[k] = arrays[k][1:]
    arrays["ana_prior_s"] = arrays["ana_prior_s"][:-1, :-1]
    np.savez(tmp_path / "other.npz", **arrays)
    with pytest.raises(ArtefactError, match="re-train") as e:
        predictors.load_file(tmp_path / "other.npz")
    assert "\n" not in str(e.value)
    # a missing prior: incomplete
    del arrays["ana_prior_s"]
    np.savez(tmp_path / "missing.npz", **arrays)
    with pytest.raises(ArtefactError, match="ana_prior_s"):
        predictors.load_file(tmp_path / "missing.npz")


def test_cost_prior_added_to_a_network_without_it(tiny_fb: predictors.LatencyPredictor) -> None:
    """fit_cost_prior gives a network trained without the head the same prior fit() computes."""
    t = predictors.load_latency_table("fbnet")
    p = predictors.LatencyPredictor("fbnet", seed=0, cost_head=True, **TINY)
    p.__dict__.update({k: v for k, v in tiny_fb.__dict__.items() if k.endswith("_") and not k.startswith("ana")})
    assert not p.has_cost_prior
    p.fit_cost_prior(t, t.splits["meta_train"])
    np.testing.assert_allclose(p.ana_prior_m_, tiny_fb.ana_prior_m_)
    np.testing.assert_allclose(p.ana_prior_s_, tiny_fb.ana_prior_s_)
    with pytest.raises(ValueError, match="cost_head"):
        predictors.LatencyPredictor("fbnet", cost_head=True, device_basis=True)


def test_meta_training_on_another_split_uses_only_its_devices() -> None:
    """fit(devices=..., valid_devices=...) on a split of our own: the analytic prior comes from those
    devices only (HELP's split is not assumed)."""
    t = predictors.load_latency_table("fbnet")
    train = ["pixel3", "samsung_a50", "silver_4114", "fpga"]
    p = predictors.LatencyPredictor("fbnet", seed=0, **dict(TINY, n_members=1, n_steps=10))
    p.fit(t, devices=train, valid_devices=["gold_6240"])
    assert p.meta_train_devices_ == train and p.ana_devices_ == train and p.meta_valid_devices_ == ["gold_6240"]
    ref = predictors.LatencyPredictor("fbnet", cost_head=True, **TINY)
    ref.__dict__.update({k: v for k, v in p.__dict__.items() if k in ("x_mean_", "x_std_")})
    ref.fit_cost_prior(t, train)
    np.testing.assert_allclose(p.ana_prior_m_, ref.ana_prior_m_)
    assert not np.allclose(ref.fit_cost_prior(t, ["1080ti_1", "titanx_32"]).ana_prior_m_, p.ana_prior_m_)
