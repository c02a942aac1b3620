"""``nas qat``: quantisation-aware fine-tuning of a search's winners, then export.

For each chosen Pareto network of a run (:func:`choose_rows`: the ``top`` distinct architectures
among the feasible Pareto rows with the highest search estimate; ties go to the lower latency,
then the lower trial number):

1. initialise it from the weight-sharing supernet (``nas.supernet.inherited_module``) when asked
   (``init="supernet"``), else from a seeded random initialisation (``"scratch"``); under
   ``init="auto"`` (the default), when the run's search used the supernet estimate, both starts
   are fine-tuned in float and the one with the higher float *validation* accuracy is kept
   (with the few supernet epochs here, a fresh start often ends higher:
   benchmarks/results/qat_mnist5k.md, "QAT start"), else scratch (the outputs say which and record both accuracies);
2. fine-tune in float (BatchNorm in training mode) for ``epochs`` epochs;
3. switch to the target's arithmetic and train ``qat_epochs`` more epochs:

   * MAX78000 (``ai8x`` space): the vendor's QAT (shared/specs/max78000.md, "QAT as the vendor
     does it"): BatchNorm folded into the conv, one power-of-two output shift per layer from
     ``|w, b|``, weights and bias at the layer's searched 1/2/4/8 bits, activations
     clamped to [-1, 127/128] and rounded to 8 bits, straight-through gradients
     (``search_spaces._ai8x``); validation and test accuracy are computed in float64, which
     makes them the chip's exact integer arithmetic (``integer_forward``);
   * phone CPUs (``fbnet`` space): BatchNorm folded, int8 per-channel weights on the 7-bit range
     [-63, 63] (no int16 pair saturation on x86 CPUs without VNNI:
     ``search_spaces._fbnet_torch.INT8_WEIGHT_MAX``), int8 per-tensor activations, int32 biases
     at input x weight scale in eval (what onnxruntime computes, on every CPU;
     ``search_spaces._fbnet_torch.prepare_int8_qat``).

Both phases keep the weights of the epoch with the best *validation* accuracy; the test split is
only scored at the end (float model after phase 2, quantised model after phase 3). Training uses
Adam with cosine decay, the run's own data split (its settings name the data and the seed) and a
fixed seed, one thread: the same inputs give the same numbers.

Outputs: ``runs/RUN/qat/summary.json`` and ``qat.md`` (linked from a section appended to the
run's ``report.md``), and ``runs/RUN/export/<network>/`` (:mod:`nas.export`).
"""

from __future__ import annotations

import json
import math
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from search_spaces import InputError

from ..data import AUGMENT_CHOICES, Augment, Dataset, load_dataset
from ..estimators import settings_from_run
from ..export import onnx_summary
from ..record import RunRecord, RunRecordError
from ..supernet import inherited_module
from ..targets import (
    Target,
    UnknownTargetError,
    export_network,
    get_target,
    target_for_device,
    target_for_run,
    target_for_space,
)
from ..train import (
    accuracy,
    check_torch_device,
    fit,
    resolve_torch_device,
    tensors,
    torch_device_name,
    torch_session,
)

__all__ = ["QatConfig", "QatNetwork", "QatProgress", "QatResult", "run_qat", "choose_rows", "load_run",
           "train_network", "resolve_run"]

DEFAULT_EPOCHS = 10
DEFAULT_QAT_EPOCHS = 6


@dataclass
class QatConfig:
    """Settings of ``nas qat`` (checked by :func:`load_run`).

    Attributes:
        top: Pareto networks to fine-tune (the highest search estimates).
        epochs: float fine-tuning epochs.
        qat_epochs: quantisation-aware epochs after the float ones.
        anneal_epochs: MAX78000: over the first of the QAT epochs the folded layers apply
            ``q + lam * (w - q)`` with ``lam`` going linearly from 1 to 0 (a training aid that
            lets low-bit layers adapt); only later epochs, in the exact vendor arithmetic, can
            be kept. Capped at ``qat_epochs - 1``.
        seed: seed of the initialisation and batch order (None: the run's seed).
        init: ``auto`` (when the search used the supernet: fine-tune from its weights and from
            scratch, keep the higher float validation accuracy; else scratch), ``supernet`` or
            ``scratch``.
        batch_size: mini-batch size.
        lr: Adam learning rate of the float phase (cosine-decayed); the QAT phase uses ``qat_lr``.
        qat_lr: Adam learning rate of the QAT phase (cosine-decayed).
        max_train_images: use only the first N training images (None: all).
        max_eval_images: score only the first N validation and test images (None: all; for
            quick checks only, the summary records the counts).
        threads: torch intra-op threads (1: safe on a shared machine).
        export: write ``runs/RUN/export/<network>/``.
        augment: "none" or "vendor" (training images get ai8x-training's MNIST augmentation, see
            :mod:`nas.data`; sequences never do).
        torch_device: ``auto`` (CUDA when available), ``cpu`` or ``cuda`` (:mod:`nas.train`): where
            the networks train and are scored; the float phase uses mixed precision on CUDA, the
            quantised phase and every score do not. Results differ across devices by float noise.
    """

    top: int = 3
    epochs: int = DEFAULT_EPOCHS
    qat_epochs: int = DEFAULT_QAT_EPOCHS
    anneal_epochs: int = 2
    seed: int | None = None
    init: str = "auto"
    batch_size: int = 64
    lr: float = 2e-3
    qat_lr: float = 1e-3
    max_train_images: int | None = None
    max_eval_images: int | None = None
    threads: int = 1
    export: bool = True
    augment: str = "none"
    torch_device: str = "auto"


@dataclass
class QatProgress:
    """Handed to the progress callback after every epoch (and once per network at its start)."""

    network: str
    index: int
    count: int
    phase: str  # "float", "float-scratch" (the second start under init="auto") or "qat"
    epoch: int
    epochs: int
    val_acc: float | None


@dataclass
class QatNetwork:
    """One fine-tuned network and its figures (accuracies are fractions in [0, 1])."""

    name: str
    arch: str
    trial: int | None
    init: str
    float_val_acc: float
    float_test_acc: float
    quant_val_acc: float
    quant_test_acc: float
    epochs: int
    qat_epochs: int
    best_float_epoch: int
    best_qat_epoch: int
    seconds: float
    device: dict[str, Any]
    export_dir: str | None = None
    files: dict[str, str] = field(default_factory=dict)
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def delta(self) -> float:
        """Quantised minus float test accuracy."""
        return self.quant_test_acc - self.float_test_acc


@dataclass
class QatResult:
    """What ``run_qat`` produced."""

    run_dir: Path
    networks: list[QatNetwork]
    summary_path: Path
    settings: dict[str, Any]


@dataclass
class _Run:
    run_dir: Path
    name: str
    record: RunRecord
    rows: list[dict[str, Any]]
    target: Target


def resolve_run(run: str | Path, runs_dir: str | Path = "runs") -> Path:
    """A run name under ``runs_dir``, or a path to a run directory."""
    p = Path(run)
    for cand in (p, Path(runs_dir) / str(run)):
        if cand.is_dir() and (cand / "pareto.json").exists():
            return cand
    if p.is_dir() or (Path(runs_dir) / str(run)).is_dir():
        d = p if p.is_dir() else Path(runs_dir) / str(run)
        raise InputError(f"run {run!r}: {d} holds no pareto.json; finish its search first (nas search ... --name {d.name})")
    raise InputError(f"no such run {run!r} (looked for {p} and {Path(runs_dir) / str(run)}); give a run name under "
                     f"{runs_dir}/ or a run directory")


def load_run(run: str | Path, runs_dir: str | Path = "runs") -> _Run:
    """Read and check a run's ``pareto.json`` (raises :class:`InputError` naming the problem)."""
    d = resolve_run(run, runs_dir)
    path = d / "pareto.json"
    try:
        payload = json.loads(path.read_text())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as e:
        raise InputError(f"{path} is not readable JSON ({e.__class__.__name__}); re-run the search to rewrite it") from None
    if not isinstance(payload, dict) or not isinstance(payload.get("pareto"), list) \
            or not isinstance(payload.get("settings"), dict):
        raise InputError(f"{path} lacks 'pareto' and 'settings'; re-run the search to rewrite it")
    if payload.get("name") is not None and not isinstance(payload["name"], str):
        raise InputError(f"{path}: 'name' {payload['name']!r} is not a run name; re-run the search to rewrite it")
    try:
        record = RunRecord.from_dict(payload["settings"])
    except RunRecordError as e:
        raise InputError(f"{path}: {e}; re-run the search to rewrite it") from None
    try:
        target_for_space(record.space)
    except UnknownTargetError:
        raise InputError(f"{path}: nas qat handles the ai8x (MAX78000) and fbnet (phone) spaces, not {record.space!r}")\
            from None
    _check_space(path, record)
    from devices import get_device

    device = get_device(record.device)  # an unknown or damaged device: one line now, not after the training
    rows = []
    for i, r in enumerate(payload["pareto"]):
        if not isinstance(r, dict) or not isinstance(r.get("arch"), str) or not _is_real(r.get("estimate")):
            raise InputError(f"{path}: Pareto row {i} lacks a text 'arch' and a numeric 'estimate'; re-run the search")
        problem = _row_problem(r)
        if problem:
            raise InputError(f"{path}: Pareto row {i}: {problem}; re-run the search to rewrite it")
        if r.get("fits", True) is False or r.get("violations", 0):
            continue
        rows.append(r)
    if not rows:
        raise InputError(f"run {d.name!r} has no feasible Pareto network; relax its limits or run more trials first")
    return _Run(run_dir=d, name=str(payload.get("name") or d.name), record=record, rows=rows,
                target=target_for_device(device))


def _is_real(v: Any) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)


def _is_count(v: Any, least: int = 0) -> bool:
    return isinstance(v, int) and not isinstance(v, bool) and v >= least


def _row_problem(r: dict[str, Any]) -> str | None:
    """Why a Pareto row's optional entries have the wrong types (None when they are fine)."""
    if "latency_ms" in r and r["latency_ms"] is not None and not (_is_real(r["latency_ms"]) and r["latency_ms"] >= 0):
        return f"'latency_ms' {r['latency_ms']!r} is not a latency in ms"
    if "trial" in r and not _is_count(r["trial"]):
        return f"'trial' {r['trial']!r} is not a trial number"
    if "fits" in r and not isinstance(r["fits"], bool):
        return f"'fits' {r['fits']!r} is not true or false"
    if "violations" in r and not (_is_count(r["violations"]) or isinstance(r["violations"], list)):
        return f"'violations' {r['violations']!r} is not a count"
    if r.get("network_file") is not None and not isinstance(r["network_file"], str):
        return f"'network_file' {r['network_file']!r} is not a file name"
    return None


def _check_space(path: Path, record: RunRecord) -> None:
    """The run's search space can be built from its record (one line naming the problem if not)."""
    try:
        _space(record)
    except InputError as e:
        raise InputError(f"{path}: its search space cannot be built ({e}); re-run the search to rewrite it") from None
    except (TypeError, ValueError) as e:
        raise InputError(f"{path}: settings 'space_options' do not fit the {record.space} space ({e}); re-run the "
                         "search to rewrite it") from None


def choose_rows(rows: list[dict[str, Any]], top: int) -> list[dict[str, Any]]:
    """The ``top`` distinct architectures with the highest estimate (ties: lower latency, then
    lower trial; a Pareto front can hold the same architecture from several trials: the first
    of them in that order stands for it)."""
    out: list[dict[str, Any]] = []
    seen: set[str] = set()
    for r in sorted(rows, key=lambda r: (-float(r["estimate"]), float(r.get("latency_ms", 0.0)),
                                         int(r.get("trial", 0)))):
        if r["arch"] not in seen:
            seen.add(r["arch"])
            out.append(r)
    return out[:top]


def run_data(record: RunRecord | dict[str, Any], seed: int) -> Dataset:
    """The run's dataset and split (built-in MNIST subset, the user's ``.npz`` or image folder),
    checked by fingerprint."""
    info = as_record(record).data
    name = info.name
    src = str(info.source or "")
    kwargs: dict[str, Any] = {}
    if info.path:
        where: str | None = str(info.path)
        if info.image_size:
            kwargs["image_size"] = tuple(int(v) for v in info.image_size)
    elif name == "mnist5k":
        where = None
    elif src.startswith("user file "):
        where = src[len("user file "):]
    else:
        raise InputError(f"cannot tell where the run's data {name!r} comes from ({src!r}); re-run the search")
    data = load_dataset(where, seed=seed, **kwargs)
    fp = info.fingerprint
    if fp and fp != data.fingerprint:
        raise InputError(f"the run's data {name!r} changed since the search (fingerprint {fp} -> {data.fingerprint}); "
                         "restore the file or search again")
    return data


def as_record(record: RunRecord | dict[str, Any]) -> RunRecord:
    """``record``, or the run record a settings dict (``pareto.json``'s ``settings``) holds."""
    return record if isinstance(record, RunRecord) else RunRecord.from_dict(record)


def used_supernet_estimate(record: RunRecord | dict[str, Any]) -> bool:
    """Whether the run whose record this is ranked with the supernet estimate."""
    return as_record(record).estimator_key == "supernet"


def _supernet_settings(record: RunRecord | dict[str, Any]) -> Any:
    """The supernet settings the run's search used (so its cache is found), or None (defaults)."""
    try:
        return settings_from_run(as_record(record))
    except (ImportError, AttributeError, TypeError, InputError):
        return None


def validate_qat_config(cfg: QatConfig) -> None:
    for key in ("top", "epochs", "batch_size"):
        v = getattr(cfg, key)
        if isinstance(v, bool) or not isinstance(v, int) or v < 1:
            raise InputError(f"invalid --{key.replace('_', '-')} {v!r}: it must be an integer of at least 1")
    if isinstance(cfg.qat_epochs, bool) or not isinstance(cfg.qat_epochs, int) or cfg.qat_epochs < 1:
        raise InputError(f"invalid --qat-epochs {cfg.qat_epochs!r}: it must be an integer of at least 1")
    if isinstance(cfg.anneal_epochs, bool) or not isinstance(cfg.anneal_epochs, int) or cfg.anneal_epochs < 0:
        raise InputError(f"invalid anneal_epochs {cfg.anneal_epochs!r}: it must be an integer >= 0")
    if cfg.augment not in AUGMENT_CHOICES:
        raise InputError(f"unknown --augment {cfg.augment!r}; use {' or '.join(AUGMENT_CHOICES)}")
    if cfg.init not in ("auto", "supernet", "scratch"):
        raise InputError(f"unknown --init {cfg.init!r}; use auto, supernet or scratch")
    if not (cfg.lr > 0 and cfg.qat_lr > 0):
        raise InputError("learning rates must be positive")
    if cfg.max_train_images is not None and cfg.max_train_images < 2:
        raise InputError("max_train_images must be at least 2")
    if cfg.max_eval_images is not None and cfg.max_eval_images < 1:
        raise InputError("max_eval_images must be at least 1")
    cfg.torch_device = check_torch_device(cfg.torch_device)
    resolve_torch_device(cfg.torch_device)  # cuda without CUDA: one line naming the fix


# ---------------------------------------------------------------------- training
def _initial(space: Any, arch: str, data: Dataset, cfg: QatConfig, seed: int, runs_dir: Path,
             search_used_supernet: bool = True, supernet_seed: int | None = None,
             supernet_settings: Any = None) -> tuple[Any, str]:
    """The float module to fine-tune and a sentence saying how it was initialised.

    ``init="auto"``: the supernet when the run's search used it (its cache then exists), else
    scratch; ``"supernet"``: always (``nas.supernet`` trains and caches one when missing).
    """
    import torch

    if cfg.init == "supernet" or (cfg.init == "auto" and search_used_supernet):
        from dataclasses import replace

        from ..supernet import SupernetSettings

        # on this command's torch device (not part of the supernet's cache key)
        settings = replace(supernet_settings or SupernetSettings(), torch_device=cfg.torch_device)
        try:
            inherited = inherited_module(space, arch, data, runs_dir=runs_dir,
                                         seed=seed if supernet_seed is None else supernet_seed,
                                         settings=settings)
        except (ImportError, AttributeError) as e:
            if cfg.init == "supernet":
                raise InputError(f"--init supernet: no supernet available ({e.__class__.__name__}: {e})") from None
        else:
            torch.manual_seed(seed)
            model = space.build(arch, quantize=False)
            model.load_state_dict(inherited.state_dict())
            return model, "supernet (weights inherited from the run's weight-sharing supernet)"
    torch.manual_seed(seed)
    return space.build_for_training(arch, quantize=False), f"scratch ({space.init_description}, seed {seed})"


def _augment_of(cfg: QatConfig, x_train: Any) -> Any:
    """The :class:`~nas.data.Augment` of ``cfg.augment`` for this data (None: none; sequences
    are never augmented)."""
    if cfg.augment == "none" or x_train.dim() != 4:
        return None
    return Augment()


def train_network(network_or_arch: Any, data: Dataset, cfg: QatConfig, *, space: Any = None, seed: int = 0,
                  runs_dir: Path | None = None, name: str = "net",
                  progress: Callable[[QatProgress], None] | None = None, index: int = 0, count: int = 1,
                  target: Target | None = None, search_used_supernet: bool = True,
                  supernet_seed: int | None = None, supernet_settings: Any = None) -> tuple[Any, dict[str, Any]]:
    """Float fine-tuning then QAT of one network; returns (quantised model, figures).

    ``target``: the search target whose arithmetic QAT trains in (None: the MAX78000's).
    ``network_or_arch``: an architecture string of ``space``, or (MAX78000 only, ``space=None``)
    a :class:`~search_spaces.Network` built with ``search_spaces._ai8x.build_module`` (e.g.
    the vendor's ``ai85net5``), initialised from scratch.
    """
    import torch

    from search_spaces import build_module

    torch_session(max(1, int(cfg.threads)))
    t0 = time.perf_counter()
    dev = resolve_torch_device(cfg.torch_device)
    xs = tensors(data, cfg.max_train_images, cfg.max_eval_images, device=dev)  # on the device once
    if space is None:
        torch.manual_seed(seed)
        model, init = build_module(network_or_arch, quantize=False), f"scratch (PyTorch default initialisation, seed {seed})"
    else:
        model, init = _initial(space, network_or_arch, data, cfg, seed, runs_dir or Path("runs"), search_used_supernet,
                               supernet_seed, supernet_settings)
    model = model.to(dev)  # built (and initialised) on the CPU: the same start on every device

    def cb(phase: str, total: int) -> Callable[[int, float], None]:
        def f(epoch: int, acc: float) -> None:
            if progress:
                progress(QatProgress(name, index, count, phase, epoch, total, acc))
        return f

    if progress:
        progress(QatProgress(name, index, count, "float", 0, cfg.epochs, None))
    aug = _augment_of(cfg, xs[0])
    fv, fe = fit(model, xs[:4], cfg.epochs, cfg.lr, cfg.batch_size, seed, cb("float", cfg.epochs), augment=aug,
                 mixed=True)
    by_init: dict[str, float] = {}
    if space is not None and cfg.init == "auto" and init.startswith("supernet"):
        # also a fresh start, same seed and epochs; keep the higher float validation accuracy
        by_init = {"supernet": fv}
        torch.manual_seed(seed)
        alt = space.build(network_or_arch, quantize=False).to(dev)
        av, ae = fit(alt, xs[:4], cfg.epochs, cfg.lr, cfg.batch_size, seed, cb("float-scratch", cfg.epochs),
                      augment=aug, mixed=True)
        by_init["scratch"] = av
        both = f"float validation accuracy {fv:.4f} from the supernet's weights, {av:.4f} from scratch"
        if av > fv:
            model, fv, fe = alt, av, ae
            init = f"scratch (seed {seed}; kept over the supernet's weights: {both})"
        else:
            init = f"supernet (weights inherited from the run's weight-sharing supernet; kept: {both})"
    ft = accuracy(model, xs[4], xs[5])
    target = target or get_target("max78000")
    model = target.to_quantised(model, xs, cfg)
    ptq = accuracy(model, xs[2], xs[3])
    anneal = target.anneal_epochs(cfg)
    qv, qe = fit(model, xs[:4], cfg.qat_epochs, cfg.qat_lr, cfg.batch_size, seed + 1, cb("qat", cfg.qat_epochs),
                  anneal_epochs=anneal, augment=aug)
    qt = accuracy(model, xs[4], xs[5])
    figures = {
        "init": init, "float_val_acc": fv, "float_test_acc": ft, "quant_val_acc": qv, "quant_test_acc": qt,
        "best_float_epoch": fe, "best_qat_epoch": qe, "val_acc_after_fold_before_qat": ptq,
        "float_val_acc_by_init": by_init,
        "seconds": time.perf_counter() - t0, "n_train": int(len(xs[1])), "n_val": int(len(xs[3])),
        "n_test": int(len(xs[5])), "torch_device": torch_device_name(dev),
    }
    return model.cpu(), figures  # on the CPU for the export


# ---------------------------------------------------------------------- device figures
def device_figures(record: RunRecord, arch: str, network: Any = None) -> dict[str, Any]:
    """The device's figures for one network, recomputed by the run's target (MAX78000: the full
    report; phones: predicted latency mean/std and the analytic int8 size)."""
    return target_for_run(record.space, record.device).device_figures(record, arch, network)


def _space(record: RunRecord | dict[str, Any]) -> Any:
    r = as_record(record)
    return target_for_space(r.space, r.device).qat_space(r)


# ---------------------------------------------------------------------- the command
def run_qat(run: str | Path, cfg: QatConfig | None = None, *, runs_dir: str | Path = "runs",
            progress: Callable[[QatProgress], None] | None = None) -> QatResult:
    """Fine-tune and quantise the chosen Pareto networks of ``run`` and export them.

    Args:
        run: a run name under ``runs_dir`` or a run directory.
        cfg: the settings (default :class:`QatConfig()`).
        runs_dir: where runs live (a RUN given by name is looked up there); the supernet cache
            is looked up in the run directory's parent, the search's runs folder.
        progress: called at each network's start and after every epoch.

    Raises:
        InputError: a bad setting, no such run, a corrupted ``pareto.json``, no feasible row;
            raised before anything is written.
    """
    cfg = cfg or QatConfig()
    validate_qat_config(cfg)
    r = load_run(run, runs_dir)
    rec = r.record
    seed = rec.data_seed if cfg.seed is None else int(cfg.seed)
    data = run_data(rec, rec.data_seed)
    space = _space(rec)
    chosen = choose_rows(r.rows, cfg.top)
    for row in chosen:
        try:
            space.parse(row["arch"])
        except InputError as e:
            raise InputError(f"{r.run_dir / 'pareto.json'}: row {row.get('trial')} has a bad arch ({e})") from None
    used_supernet = used_supernet_estimate(rec)
    qat_dir = r.run_dir / "qat"
    qat_dir.mkdir(parents=True, exist_ok=True)
    nets: list[QatNetwork] = []
    for i, row in enumerate(chosen):
        name = Path(str(row.get("network_file") or f"trial-{int(row.get('trial', i)):04d}")).stem
        network = r.target.network(space, row["arch"])
        # the supernet cache sits in the search's runs folder, the run directory's parent
        model, fig = train_network(row["arch"], data, cfg, space=space, seed=seed, runs_dir=r.run_dir.parent, name=name,
                                   progress=progress, index=i, count=len(chosen), target=r.target,
                                   search_used_supernet=used_supernet,
                                   supernet_seed=rec.data_seed,
                                   supernet_settings=_supernet_settings(rec) if used_supernet else None)
        dev = device_figures(rec, row["arch"], network)
        net = QatNetwork(
            name=name, arch=row["arch"], trial=row.get("trial"), init=fig["init"],
            float_val_acc=fig["float_val_acc"], float_test_acc=fig["float_test_acc"],
            quant_val_acc=fig["quant_val_acc"], quant_test_acc=fig["quant_test_acc"],
            epochs=cfg.epochs, qat_epochs=cfg.qat_epochs, best_float_epoch=fig["best_float_epoch"],
            best_qat_epoch=fig["best_qat_epoch"], seconds=fig["seconds"], device=dev,
            extra={"estimate": row["estimate"], "val_acc_after_fold_before_qat": fig["val_acc_after_fold_before_qat"],
                   "float_val_acc_by_init": fig["float_val_acc_by_init"],
                   "n_train": fig["n_train"], "n_val": fig["n_val"], "n_test": fig["n_test"],
                   "torch_device": fig["torch_device"]},
        )
        if cfg.export:
            out = r.run_dir / "export" / name
            files = export_network(model, net, out, record=rec, data=data, run_name=r.name,
                                   network=network, space=space, qat_settings=_cfg_dict(cfg, seed))
            net.export_dir = str(out.relative_to(r.run_dir))
            net.files = {k: str(Path(v).relative_to(r.run_dir)) for k, v in files.items()}
        nets.append(net)
    settings = {"run": r.name, "device": rec.device, "space": rec.space,
                "torch_device": torch_device_name(resolve_torch_device(cfg.torch_device)),
                "data": data.summary(), "split_seed": rec.data_seed,
                "metric": rec.metric, "qat": _cfg_dict(cfg, seed),
                "choice": f"the {cfg.top} distinct architectures among the feasible Pareto rows with the highest "
                          "search estimate (ties: lower latency, then lower trial)"}
    summary = qat_dir / "summary.json"
    payload = {**settings, "networks": [network_dict(n) for n in nets]}
    _write(summary, json.dumps(payload, indent=1))
    md = qat_markdown(payload)
    _write(qat_dir / "qat.md", md)
    _append_report(r.run_dir / "report.md", payload)
    return QatResult(run_dir=r.run_dir, networks=nets, summary_path=summary, settings=settings)


def _cfg_dict(cfg: QatConfig, seed: int) -> dict[str, Any]:
    d = asdict(cfg)
    d["seed"] = seed
    return d


def network_dict(n: QatNetwork) -> dict[str, Any]:
    """JSON form of one network's results (with the delta)."""
    d = asdict(n)
    d["delta_test_acc"] = n.delta
    return d


def _write(path: Path, text: str) -> None:
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(text)
    tmp.replace(path)


def _pct(x: float) -> str:
    return f"{100 * x:.2f}%"


def table_rows(payload: dict[str, Any]) -> list[list[str]]:
    """Rows of the results table: network, float / quantised test accuracy, delta, latency,
    weights, device check."""
    out = []
    for n in payload["networks"]:
        dev = n["device"]
        size = target_for_run(payload["space"], payload["device"]).size_text(dev)
        out.append([n["name"], _pct(n["float_test_acc"]), _pct(n["quant_test_acc"]),
                    f"{100 * n['delta_test_acc']:+.2f}", f"{dev['latency_ms']:.3f}", size,
                    "pass" if dev["fits"] else f"FAIL: {dev['violations'][0]}"])
    return out


TABLE_HEADER = ["network", "float test acc", "quantised test acc", "delta (points)", "latency ms", "weights",
                "device check"]


def qat_markdown(payload: dict[str, Any]) -> str:
    """``qat.md``: the settings and the results table."""
    q = payload["qat"]
    d = payload["data"]
    anneal, arithmetic, latency = target_for_run(payload["space"], payload["device"]).qat_notes(q)
    lines = [
        f"# QAT of {payload['run']}",
        "",
        f"- device {payload['device']}, space {payload['space']}; data {d['name']} ({d['train']} train / {d['val']} "
        f"validation / {d['test']} test, split seed {payload['split_seed']})",
        f"- chosen: {payload['choice']}",
        f"- training: {q['epochs']} float epochs (Adam lr {q['lr']:g}, cosine), then BatchNorm folded and "
        f"{q['qat_epochs']} quantisation-aware epochs (lr {q['qat_lr']:g}"
        + anneal
        + f"); batch {q['batch_size']}, seed {q['seed']}; each phase keeps its best-validation epoch (QAT: among "
        "epochs in the exact quantised arithmetic); test accuracy is scored once at the end",
        "- augmentation: " + ("ai8x-training's MNIST recipe on training images (random crop with 4-pixel padding, "
                              "rotation up to 20 degrees, 10% translation, 5-degree shear, black fill)"
                              if q.get("augment", "none") == "vendor" else "none"),
        "- arithmetic: " + arithmetic,
        f"- torch device: {payload.get('torch_device', 'cpu')}"
        + ("; float epochs in mixed precision (torch.autocast), QAT epochs and every score in full precision"
           if str(payload.get("torch_device", "")).startswith("cuda") else ""),
        "- latency: " + latency,
        "",
        "| " + " | ".join(TABLE_HEADER) + " | initialisation |",
        "|" + "---|" * (len(TABLE_HEADER) + 1),
    ]
    for row, n in zip(table_rows(payload), payload["networks"]):
        lines.append("| " + " | ".join(row) + f" | {n['init']} |")
    lines.append("")
    for n in payload["networks"]:
        onnx = f"; {onnx_summary(n['extra']['onnx'])}" if "onnx" in n.get("extra", {}) else ""
        lines.append((f"- `{n['name']}`: `{n['arch']}`; exported to `{n['export_dir']}/`" if n.get("export_dir")
                      else f"- `{n['name']}`: `{n['arch']}`") + onnx)
    return "\n".join(lines) + "\n"


_MARK = "<!-- nas qat -->"


def _append_report(path: Path, payload: dict[str, Any]) -> None:
    """Replace (or add) the QAT section at the end of the run's report.md."""
    text = path.read_text() if path.exists() else ""
    if _MARK in text:
        text = text[: text.index(_MARK)].rstrip() + "\n"
    rows = table_rows(payload)
    sec = [_MARK, "", "## Quantisation-aware training (`nas qat`)", "",
           "Details, settings and initialisation: [qat/qat.md](qat/qat.md); figures: `qat/summary.json`; "
           "exported files under `export/`.", "",
           "| " + " | ".join(TABLE_HEADER) + " |", "|" + "---|" * len(TABLE_HEADER)]
    sec += ["| " + " | ".join(r) + " |" for r in rows]
    _write(path, text + ("\n" if text else "") + "\n".join(sec) + "\n")
