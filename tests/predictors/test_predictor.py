from __future__ import annotations

import copy
import json
import zipfile
from pathlib import Path

import numpy as np
import pytest

import predictors
from predictors import (
    ArchitectureError,
    ArtefactError,
    InputError,
    PredictorInputError,
    UnknownSpaceError,
)
from search_spaces import get_space

TINY = dict(hidden=16, n_layers=1, n_members=2, n_steps=40, batch_devices=6, n_query=32, lr=3e-3)


@pytest.fixture(scope="module")
def table() -> predictors.LatencyTable:
    return predictors.load_latency_table("nasbench201")


@pytest.fixture(scope="module")
def tiny(table: predictors.LatencyTable) -> predictors.LatencyPredictor:
    return predictors.LatencyPredictor("nasbench201", seed=0, **TINY).fit(table)


def _device(table: predictors.LatencyTable, name: str = "titanx_1") -> np.ndarray:
    return table.device(name)


def test_table_shapes() -> None:
    for space in predictors.SPACES:
        t = predictors.load_latency_table(space)
        assert t.latency_ms.shape == (len(t.devices), len(t.archs))
        assert len(t.ref_index) == 10 and np.all(t.latency_ms > 0)
        train, query = predictors.protocol_split(t, t.splits["meta_test"][0])
        assert len(query) == 800 and query.min() >= t.n_train_pool


def test_unknown_space() -> None:
    with pytest.raises(UnknownSpaceError, match="available"):
        predictors.load("resnet")
    with pytest.raises(InputError):
        predictors.load_latency_table("resnet")


def test_tiny_meta_training(tiny: predictors.LatencyPredictor, table: predictors.LatencyTable) -> None:
    assert len(tiny.members_) == 2 and len(tiny.valid_spearman_) == 2
    y = _device(table)
    q = tiny.adapt(table.ref_archs, y[table.ref_index])
    _, query = predictors.protocol_split(table, "titanx_1")
    pred, std = q.predict([table.archs[i] for i in query], return_std=True)
    assert pred.shape == std.shape == (800,)
    assert np.all(pred > 0) and np.all(std > 0)
    assert predictors.all_metrics(y[query], pred)["spearman"] > 0.5  # far above chance


def test_adapt_does_not_change_original(tiny: predictors.LatencyPredictor, table: predictors.LatencyTable) -> None:
    y = _device(table)
    q = tiny.adapt(table.ref_archs, y[table.ref_index])
    assert q.is_adapted and not tiny.is_adapted
    with pytest.raises(PredictorInputError, match="adapt"):
        tiny.predict(table.ref_archs)


def test_adapt_moves_toward_samples(tiny: predictors.LatencyPredictor, table: predictors.LatencyTable) -> None:
    rng = np.random.default_rng(0)
    extra = rng.choice(table.n_train_pool, 30, replace=False)
    y = _device(table, "gold_6240")
    refs = table.ref_archs
    archs = [table.archs[i] for i in extra]
    q0 = tiny.adapt(refs, y[table.ref_index])
    q1 = tiny.adapt(refs + archs, np.concatenate([y[table.ref_index], y[extra]]))
    err0 = np.abs(np.log(q0.predict(archs) / y[extra])).mean()
    err1 = np.abs(np.log(q1.predict(archs) / y[extra])).mean()
    assert err1 < err0
    # a device 10x slower gives predictions about 10x larger (the absolute level is an input too)
    q10 = tiny.adapt(refs, 10 * y[table.ref_index])
    assert np.median(q10.predict(archs) / q0.predict(archs)) == pytest.approx(10, rel=0.15)


@pytest.mark.parametrize("bad", [np.nan, -1.0, 0.0, np.inf])
def test_bad_latency(tiny: predictors.LatencyPredictor, table: predictors.LatencyTable, bad: float) -> None:
    y = _device(table)[table.ref_index].copy()
    y[3] = bad
    with pytest.raises(PredictorInputError, match="latency #3"):
        tiny.adapt(table.ref_archs, y)


def test_missing_references(tiny: predictors.LatencyPredictor, table: predictors.LatencyTable) -> None:
    y = _device(table)
    with pytest.raises(PredictorInputError, match="missing 2") as e:
        tiny.adapt(table.ref_archs[:8], y[table.ref_index[:8]])
    assert table.ref_archs[8] in str(e.value)


def test_length_mismatch(tiny: predictors.LatencyPredictor, table: predictors.LatencyTable) -> None:
    with pytest.raises(PredictorInputError, match="one latency"):
        tiny.adapt(table.ref_archs, [1.0] * 9)


def test_malformed_arch(tiny: predictors.LatencyPredictor, table: predictors.LatencyTable) -> None:
    y = _device(table)[table.ref_index]
    with pytest.raises(ArchitectureError):
        tiny.adapt(table.ref_archs[:9] + ["|bad~0|"], y)
    q = tiny.adapt(table.ref_archs, y)
    with pytest.raises(ArchitectureError, match="unknown op"):
        q.predict(["|conv~0|+|none~0|none~1|+|none~0|none~1|none~2|"])


def test_save_load_roundtrip(tiny: predictors.LatencyPredictor, table: predictors.LatencyTable, tmp_path: Path) -> None:
    y = _device(table)
    q = tiny.adapt(table.ref_archs, y[table.ref_index])
    archs = table.archs[:50]
    for pred in (tiny, q):
        path = pred.save(tmp_path / "p.npz")
        back = predictors.load_file(path)
        assert back.get_params() == pred.get_params() and back.is_adapted == pred.is_adapted
        for a, b in zip(back.members_, pred.members_):
            assert a.keys() == b.keys() and all(np.array_equal(a[k], b[k]) for k in a)
    back = predictors.load_file(tmp_path / "p.npz")
    np.testing.assert_allclose(back.predict(archs), q.predict(archs), rtol=1e-6)
    with np.load(tmp_path / "p.npz", allow_pickle=False) as z:  # plain arrays only
        meta = json.loads(bytes(z["__meta__"]).decode())
    assert meta["format_version"] == 5 and meta["space"] == "nasbench201"  # the analytic cost head: v5
    assert meta["params"]["cost_head"] is True


@pytest.fixture(scope="module")
def tiny_old(table: predictors.LatencyTable) -> predictors.LatencyPredictor:
    return predictors.LatencyPredictor("nasbench201", seed=0, cost_head=False, **TINY).fit(table)


def test_without_cost_head_writes_version1(tiny_old: predictors.LatencyPredictor, tmp_path: Path) -> None:
    path = tiny_old.save(tmp_path / "p.npz")
    with np.load(path, allow_pickle=False) as z:
        meta = json.loads(bytes(z["__meta__"]).decode())
        assert meta["format_version"] == 1 and "ana_mean" not in z.files  # no cost features: v1


def test_truncated_and_foreign_files(tiny: predictors.LatencyPredictor, tmp_path: Path) -> None:
    path = Path(tiny.save(tmp_path / "p.npz"))
    data = path.read_bytes()
    trunc = tmp_path / "trunc.npz"
    trunc.write_bytes(data[: len(data) // 2])
    with pytest.raises(ArtefactError, match="truncated"):
        predictors.load_file(trunc)
    text = tmp_path / "notes.npz"
    text.write_text("hello")
    with pytest.raises(ArtefactError, match="not a predictor file"):
        predictors.load_file(text)
    other = tmp_path / "other.npz"
    np.savez(other, a=np.zeros(3))
    with pytest.raises(ArtefactError, match="not a predictor file"):
        predictors.load_file(other)
    with pytest.raises(ArtefactError, match="does not exist"):
        predictors.load_file(tmp_path / "missing.npz")


def test_newer_version_refused(tiny: predictors.LatencyPredictor, tmp_path: Path) -> None:
    path = Path(tiny.save(tmp_path / "p.npz"))
    with np.load(path, allow_pickle=False) as z:
        arrays = {k: z[k] for k in z.files}
    meta = json.loads(bytes(arrays["__meta__"]).decode())
    meta["format_version"] = predictors.FORMAT_VERSION + 1
    meta["written_by"] = "hw-nas 9.9.9"
    arrays["__meta__"] = np.frombuffer(json.dumps(meta).encode(), dtype=np.uint8)
    newer = tmp_path / "newer.npz"
    np.savez(newer, **arrays)
    with pytest.raises(ArtefactError, match="hw-nas 9.9.9") as e:
        predictors.load_file(newer)
    assert f"version {predictors.FORMAT_VERSION + 1}" in str(e.value) and "\n" not in str(e.value)
    assert zipfile.is_zipfile(newer)


@pytest.mark.parametrize("space", predictors.SPACES)
def test_pretrained(space: str) -> None:
    if space not in predictors.list_pretrained():
        pytest.skip(f"no shipped predictor for {space}")
    p = predictors.load(space)
    t = predictors.load_latency_table(space)
    dev = t.splits["meta_valid"][0]
    q = p.adapt(t.ref_archs, t.device(dev)[t.ref_index])
    _, query = predictors.protocol_split(t, dev)
    pred = q.predict([t.archs[i] for i in query[:200]])
    assert predictors.all_metrics(t.device(dev)[query[:200]], pred)["spearman"] > 0.5


def test_baselines(table: predictors.LatencyTable) -> None:
    y = _device(table)
    archs = table.archs[1000:1100]
    for b in (predictors.FlopsProxy("nasbench201"), predictors.NearestDevice("nasbench201").fit(table),
              predictors.SampleGP("nasbench201"),
              predictors.MetaSGD("nasbench201", hidden=8, n_steps=3, batch_devices=2, n_query=8).fit(table)):
        q = b.adapt(table.ref_archs, y[table.ref_index])
        pred, std = q.predict(archs, return_std=True)
        assert pred.shape == (100,) and np.all(pred > 0) and np.all(std >= 0), type(b).__name__
        with pytest.raises(PredictorInputError):
            b.adapt(table.ref_archs, [np.nan] * 10)


def test_meta_training_is_reproducible(table: predictors.LatencyTable) -> None:
    cfg = dict(TINY, n_members=1, n_steps=10)
    a = predictors.LatencyPredictor("nasbench201", seed=3, **cfg).fit(table)
    b = predictors.LatencyPredictor("nasbench201", seed=3, **cfg).fit(table)
    assert all(np.array_equal(a.members_[0][k], b.members_[0][k]) for k in a.members_[0])


def test_cli_train_refuses_overwrite(tmp_path: Path) -> None:
    from nas.cli import main

    out = tmp_path / "p.npz"
    out.write_bytes(b"x")
    assert main(["predictor", "train", "--space", "fbnet", "--out", str(out)]) == 2
    assert out.read_bytes() == b"x"


def test_version1_file_still_read(tiny_old: predictors.LatencyPredictor, table: predictors.LatencyTable,
                                  tmp_path: Path) -> None:
    # a format-1 file (gp_features "h", no cost arrays, no "cost_head" parameter) reads the same as before
    tiny = tiny_old
    path = Path(tiny.save(tmp_path / "p.npz"))
    with np.load(path, allow_pickle=False) as z:
        arrays = {k: z[k] for k in z.files}
    meta = json.loads(bytes(arrays["__meta__"]).decode())
    meta["format_version"] = 1
    del meta["params"]["cost_head"]
    arrays["__meta__"] = np.frombuffer(json.dumps(meta).encode(), dtype=np.uint8)
    old = tmp_path / "old.npz"
    np.savez(old, **arrays)
    back = predictors.load_file(old)
    assert back.cost_head is False
    y = _device(table)[table.ref_index]
    archs = table.archs[:50]
    np.testing.assert_allclose(back.adapt(table.ref_archs, y).predict(archs),
                               tiny.adapt(table.ref_archs, y).predict(archs), rtol=1e-6)


@pytest.fixture(scope="module")
def tiny_cost() -> predictors.LatencyPredictor:
    t = predictors.load_latency_table("fbnet")
    return predictors.LatencyPredictor("fbnet", seed=0, gp_features="hc", device_basis=False, cost_head=False,
                                       **TINY).fit(t)


def test_cost_features_fit_a_mac_bound_device(tiny_cost: predictors.LatencyPredictor, tmp_path: Path) -> None:
    """With log-MACs in the closed-form head, ten samples of a device whose latency is exactly
    proportional to MACs give a near-perfect ranking, whatever the network learnt."""
    from predictors._data import flops_params

    t = predictors.load_latency_table("fbnet")
    macs = flops_params("fbnet", t.features())[:, 0]
    y = 0.05 * macs
    _, query = predictors.protocol_split(t, t.splits["meta_valid"][0])
    q = tiny_cost.adapt(t.ref_archs, y[t.ref_index])
    archs = [t.archs[i] for i in query]
    pred, std = q.predict(archs, return_std=True)
    assert predictors.all_metrics(y[query], pred)["spearman"] > 0.98
    assert np.all(std > 0)
    # mean-only prediction (closed-form correction folded into the output layer) = full path
    np.testing.assert_allclose(q.predict(archs), pred, rtol=1e-4)
    path = q.save(tmp_path / "c.npz")
    with np.load(path, allow_pickle=False) as z:
        assert json.loads(bytes(z["__meta__"]).decode())["format_version"] == 2  # no device basis
    back = predictors.load_file(path)
    assert back.get_params()["gp_features"] == "hc"
    np.testing.assert_allclose(back.predict(archs), pred, rtol=1e-5)


def test_space_defaults() -> None:
    for space, d in predictors._model.SPACE_DEFAULTS.items():
        params = predictors.LatencyPredictor(space).get_params()
        assert all(params[k] == v for k, v in d.items())
    with pytest.raises(ValueError, match="gp_features"):
        predictors.LatencyPredictor("fbnet", gp_features="x")


def test_variance_fast_path_matches_float64(tiny_cost: predictors.LatencyPredictor) -> None:
    """The fast path's GP variance (k_q from folded matrices, float64 after the last layer)
    equals a direct float64 computation, and the mean does not depend on return_std."""
    t = predictors.load_latency_table("fbnet")
    q = tiny_cost.adapt(t.ref_archs, t.device("titanx_32")[t.ref_index])
    x = t.features()[4000:4300].astype(np.float64)
    zm, zv = q.predict_z(x)
    zm0, _ = q.predict_z(x, return_var=False)
    np.testing.assert_allclose(zm, zm0, rtol=0, atol=1e-5)
    xs, cs, _ = q._features(x)
    xr, cr, _ = q._features(q.support_archs_)
    for i, (m, st) in enumerate(zip(q.members_, q.support_state_)):
        m64 = {k: v.astype(np.float64) for k, v in m.items()}
        z, phi = q._base(m64, xs.astype(np.float64), q.embedding_, cs.astype(np.float64))
        _, phis = q._base(m64, xr.astype(np.float64), q.embedding_, cr.astype(np.float64))
        sw2, sn2 = float(st["sw2"]), float(st["sn2"])
        k = sw2 * phis @ phis.T + sn2 * np.eye(len(phis))
        kq = phi @ phis.T
        var = sw2 * (phi * phi).sum(1) - sw2**2 * np.einsum("ij,ij->i", kq @ np.linalg.inv(k), kq) + sn2
        assert np.all(var > 0)
        np.testing.assert_allclose(zv[i], var, rtol=1e-3)


@pytest.fixture(scope="module")
def tiny_basis(table: predictors.LatencyTable) -> predictors.LatencyPredictor:
    return predictors.LatencyPredictor("nasbench201", seed=0, device_basis=True, cost_head=False, **TINY).fit(table)


def test_device_basis_follows_a_meta_train_device(tiny_basis: predictors.LatencyPredictor,
                                                  tiny: predictors.LatencyPredictor,
                                                  table: predictors.LatencyTable, tmp_path: Path) -> None:
    """A device whose log-latency is a mixture of the meta-train devices' linear latency models is
    ranked near-perfectly from its ten references once the basis is in the head; the evidence picks
    a non-zero prior scale, and the same members without the basis rank it worse."""
    b = tiny_basis._basis(table.features())
    assert b.shape == (len(table.archs), len(table.splits["meta_train"]))
    np.testing.assert_allclose(b[table.ref_index].mean(0), 0, atol=1e-9)  # standardised on the refs
    y = np.exp(0.3 * (0.7 * b[:, 0] + 0.3 * b[:, 4]) + 1.0)
    _, query = predictors.protocol_split(table, "titanx_1")
    archs = [table.archs[i] for i in query]
    q = tiny_basis.adapt(table.ref_archs, y[table.ref_index])
    assert q.basis_scale_ > 0
    pred, std = q.predict(archs, return_std=True)
    rho = predictors.all_metrics(y[query], pred)["spearman"]
    assert rho > 0.97 and np.all(std > 0)
    off = predictors.LatencyPredictor("nasbench201", seed=0, cost_head=False, **TINY)
    off.__dict__.update({k: v for k, v in tiny_basis.__dict__.items() if k.endswith("_") and "basis" not in k})
    off.device_basis = False
    rho_off = predictors.all_metrics(y[query], off.adapt(table.ref_archs, y[table.ref_index]).predict(archs))
    assert rho_off["spearman"] < rho
    # fast (folded) and direct paths agree; the mean does not depend on return_std
    np.testing.assert_allclose(q.predict(archs), pred, rtol=1e-5)
    xq = table.features()[query]
    xs, _, bq = q._features(xq)
    bq = bq * (q.basis_scale_ / np.sqrt(bq.shape[1]))
    direct = []
    for m, st in zip(q.members_, q.support_state_):
        z0, phi = q._base(m, xs, q.embedding_, None, bq)
        direct.append(z0 + (phi @ st["phi_s"].T) @ st["alpha"])
    np.testing.assert_allclose(q.predict_z(xq, return_var=False)[0], np.array(direct), atol=1e-4)
    # saved as format version 3 with the basis; read back identically
    path = q.save(tmp_path / "b.npz")
    with np.load(path, allow_pickle=False) as z:
        meta = json.loads(bytes(z["__meta__"]).decode())
        assert meta["format_version"] == 3 and "basis_w" in z.files
    back = predictors.load_file(path)
    assert back.device_basis and back.basis_scale_ == q.basis_scale_
    np.testing.assert_allclose(back.predict(archs), pred, rtol=1e-6)
    # a version-2 reader would refuse it; a file from before version 3 loads with the basis off
    assert predictors.load_file(tiny.save(tmp_path / "v1.npz")).device_basis is False



def test_nnls_basis_fit_recovers_a_positive_device_mixture(tiny_basis: predictors.LatencyPredictor,
                                                          table: predictors.LatencyTable, tmp_path: Path) -> None:
    """basis_fit="nnls": the prior mean is a non-negative mix of the member's z0 and the basis
    columns fitted to the samples; a device that is such a mix is ranked near-perfectly, the fast
    path equals the direct formula, and the choice survives a save (format version 4)."""
    nn = copy.copy(tiny_basis)
    nn.basis_fit = "nnls"
    b = nn._basis(table.features())
    y = np.exp(0.3 * (0.7 * b[:, 0] + 0.3 * b[:, 4]) + 1.0)
    _, query = predictors.protocol_split(table, "titanx_1")
    archs = [table.archs[i] for i in query]
    q = nn.adapt(table.ref_archs, y[table.ref_index])
    assert q.basis_scale_ == 0.0
    for st in q.support_state_:
        assert float(st["nn_a"]) >= 0 and np.all(st["nn_w"] >= 0)
        assert st["nn_w"][0] > st["nn_w"][4] > 0  # the mixture's two devices, in order
    pred, std = q.predict(archs, return_std=True)
    assert predictors.all_metrics(y[query], pred)["spearman"] > 0.99 and np.all(std > 0)
    np.testing.assert_allclose(q.predict(archs), pred, rtol=1e-5)
    # direct: prior mean a z0 + B w + c, plus the closed-form head on [h, 1] (no basis in phi)
    xq = table.features()[query]
    xs, _, bq = q._features(xq)
    direct = []
    for m, st in zip(q.members_, q.support_state_):
        z0, phi = q._base(m, xs, q.embedding_)
        assert phi.shape[1] == q.hidden + 1
        prior = float(st["nn_a"]) * z0 + bq @ st["nn_w"] + float(st["nn_c"])
        direct.append(prior + (phi @ st["phi_s"].T) @ st["alpha"])
    np.testing.assert_allclose(q.predict_z(xq, return_var=False)[0], np.array(direct), atol=1e-4)
    path = q.save(tmp_path / "nnls.npz")
    with np.load(path, allow_pickle=False) as z:
        meta = json.loads(bytes(z["__meta__"]).decode())
        assert meta["format_version"] == 4 < predictors.FORMAT_VERSION  # no cost head: v4
        assert meta["params"]["basis_fit"] == "nnls"
    back = predictors.load_file(path)
    assert back.basis_fit == "nnls"
    np.testing.assert_allclose(back.predict(archs), pred, rtol=1e-6)
    # a version-3 file (no basis_fit) reads as "gp", whatever the space's default now is
    v3 = predictors.load_file(tiny_basis.save(tmp_path / "v3.npz"))
    assert v3.basis_fit == "gp"
    with pytest.raises(ValueError, match="basis_fit"):
        predictors.LatencyPredictor("nasbench201", basis_fit="lasso")


def test_nnls_basis_with_cost_features_fast_path_equals_direct() -> None:
    """Cost features in the head and the basis in the prior mean together: the folded fast path
    gives the direct formula's means and variances."""
    t = predictors.load_latency_table("fbnet")
    p = predictors.LatencyPredictor("fbnet", seed=0, device_basis=True, basis_fit="nnls", **TINY).fit(t)
    assert p.gp_features == "hc" and p.device_basis and p.basis_fit == "nnls"
    d = t.splits["meta_valid"][1]
    _, query = predictors.protocol_split(t, d)
    q = p.adapt(t.ref_archs, t.device(d)[t.ref_index])
    xq = t.features()[query[:300]]
    zm, zv = q.predict_z(xq)
    xs, cq, bq = q._features(xq)
    for i, (m, st) in enumerate(zip(q.members_, q.support_state_)):
        z0, phi = q._base(m, xs, q.embedding_, cq)
        assert phi.shape[1] == q.hidden + 2 + 1  # h, the two cost features, 1: no basis columns
        phi = phi.astype(np.float64)
        prior = float(st["nn_a"]) * z0 + bq @ st["nn_w"] + float(st["nn_c"])
        np.testing.assert_allclose(zm[i], prior + (phi @ st["phi_s"].T.astype(np.float64)) @ st["alpha"], atol=1e-4)
        sw2, sn2 = float(st["sw2"]), float(st["sn2"])
        phis = st["phi_s"].astype(np.float64)
        kq = phi @ phis.T
        kinv = np.linalg.inv(sw2 * phis @ phis.T + sn2 * np.eye(len(phis)))
        var = sw2 * (phi * phi).sum(1) - sw2**2 * np.einsum("ij,ij->i", kq @ kinv, kq) + sn2
        np.testing.assert_allclose(zv[i], var, rtol=1e-3, atol=1e-6)


def test_reference_selection_uses_only_meta_train_devices_and_pool_rows() -> None:
    """select_references ("max_volume"): ten distinct rows outside HELP's query rows, chosen from
    the meta-train devices alone (changing a meta-valid or meta-test device's latencies leaves
    them unchanged). The default table and the shipped predictors keep HELP's references."""
    import dataclasses

    help_t = predictors.load_latency_table("nasbench201")
    t = predictors.load_latency_table("nasbench201", "max_volume")
    ref = t.ref_index
    assert len(set(ref.tolist())) == 10
    assert not np.any((ref >= t.n_train_pool) & (ref < t.n_train_pool + t.n_query))
    np.testing.assert_array_equal(ref, predictors.select_references(help_t))
    assert not np.array_equal(np.sort(ref), np.sort(help_t.ref_index))
    lat = t.latency_ms.copy()
    rng = np.random.default_rng(0)
    for d in t.splits["meta_valid"] + t.splits["meta_test"]:
        lat[t.devices.index(d)] *= rng.uniform(0.5, 2.0, lat.shape[1])
    np.testing.assert_array_equal(predictors.select_references(dataclasses.replace(t, latency_ms=lat)), ref)
    lat[t.devices.index(t.splits["meta_train"][0])] *= rng.uniform(0.5, 2.0, lat.shape[1])
    assert not np.array_equal(predictors.select_references(dataclasses.replace(t, latency_ms=lat)), ref)
    space = get_space("nasbench201")
    assert [space.format(a) for a in predictors.load("nasbench201").ref_archs_] == [help_t.archs[i] for i in
                                                                                    help_t.ref_index]
    with pytest.raises(ValueError, match="references"):
        predictors.load_latency_table("nasbench201", "random")


# ---------------------------------------------------------------------------- damaged files (issue 16)
def _rewrite(src: Path, dst: Path, edit_meta=None, edit_arrays=None) -> Path:
    with np.load(src, allow_pickle=False) as z:
        arrays = {k: z[k] for k in z.files}
    meta = json.loads(bytes(arrays.pop("__meta__")).decode())
    if edit_meta:
        edit_meta(meta)
    if edit_arrays:
        edit_arrays(arrays)
    arrays["__meta__"] = np.frombuffer(json.dumps(meta).encode(), dtype=np.uint8)
    np.savez(dst, **arrays)
    return dst


@pytest.mark.parametrize("edit_meta, edit_arrays, word", [
    (lambda m: m.update(format_version=-3), None, "version -3"),
    (lambda m: m.update(format_version=True), None, "version True"),
    (lambda m: m.update(format_version=0), None, "version 0"),
    (lambda m: m.update(format_version="2"), None, "version '2'"),
    (None, lambda a: a.update(x_mean=np.zeros(7)), "x_mean"),
    (None, lambda a: a.update(x_mean=np.zeros((51, 2)), x_std=np.ones((51, 2))), "x_mean"),
    (None, lambda a: a.update(x_std=-a["x_std"]), "x_std"),
    (None, lambda a: a.update({"m1/W1": np.zeros((3, 3))}), "W1"),
    (None, lambda a: a.update({"m0/b0": np.full(a["m0/b0"].shape, np.nan)}), "NaN"),
    (None, lambda a: a.update(support_y=a["support_y"][:3]), "support_y"),
    (None, lambda a: a.update(support_y=np.array(["a"] * len(a["support_y"]))), "support_y"),
    (lambda m: m.update(n_members="2"), None, "n_members"),
    (lambda m: m.update(member_keys="W0x"), None, "member_keys"),
    (lambda m: m.update(ref_archs=5), None, "ref_archs"),
    (lambda m: m.update(support_archs=["|bad|"] * len(m["support_archs"])), None, "do not fit together"),
    (lambda m: m.update(params=[1, 2]), None, "params"),
])
def test_damaged_predictor_files_are_one_line_errors(tiny: predictors.LatencyPredictor, table: predictors.LatencyTable,
                                                     tmp_path: Path, edit_meta, edit_arrays, word: str) -> None:
    """Issue 16 case 10: a wrong x_mean shape gave a raw ValueError; versions -3 and True were accepted."""
    q = tiny.adapt(table.ref_archs, _device(table)[table.ref_index])
    src = Path(q.save(tmp_path / "p.npz"))
    bad = _rewrite(src, tmp_path / "bad.npz", edit_meta, edit_arrays)
    with pytest.raises(ArtefactError) as e:
        predictors.load_file(bad)
    msg = str(e.value)
    assert word in msg and str(bad) in msg and "\n" not in msg and "again" in msg, msg
    # the fix it names works: the file saved again loads
    predictors.load_file(q.save(bad))
