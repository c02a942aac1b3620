"""The same tiny supernet, estimate and QAT on CUDA and on the CPU: equal within float noise, a
cache trained on one device loads on the other, and the chip's exact arithmetic scores the same
weights identically on both. Skipped where torch finds no CUDA device."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import torch

from nas import load_npz
from nas.estimators import ShortTraining, SupernetAccuracy
from nas.qat import QatConfig, train_network
from nas.supernet import SupernetSettings, get_supernet, supernet_key
from nas.train import top1
from search_spaces import get_space, vendor_arithmetic

pytestmark = pytest.mark.skipif(not torch.cuda.is_available(),
                                reason="no CUDA device (torch.cuda.is_available() is False): the CPU/CUDA "
                                       "comparison needs a GPU")

TINY = SupernetSettings(epochs_largest=1, epochs_elastic=1, batch_size=32, recal_images=64, torch_device="cpu")
ARCH = "16k3b8|16k3b4|fcb8"
NOISE = 0.05  # accuracy points (fraction) two devices may differ by after the same short training


@pytest.fixture(scope="module")
def digits(tmp_path_factory):
    from sklearn.datasets import load_digits

    d = load_digits()
    path = Path(tmp_path_factory.mktemp("d")) / "digits.npz"
    np.savez(path, x=(d.images[:400] * 16).clip(0, 255).astype(np.uint8), y=d.target[:400])
    return load_npz(path)


@pytest.fixture(scope="module")
def space(digits):
    return get_space("ai8x", input_shape=digits.input_shape, num_classes=digits.num_classes,
                     widths=(8, 16), max_units=2, max_depth=2)


def test_cuda_matches_the_cpu_within_float_noise(tmp_path, digits, space) -> None:
    """Supernet (cache shared both ways), its estimate, short-QAT, QAT, and the exact scoring."""
    _supernet_and_estimate(tmp_path, digits, space)
    _exact_arithmetic_scores_the_same_weights_identically(digits, space)
    _short_qat_and_qat(digits, space)


def _supernet_and_estimate(tmp_path, digits, space) -> None:
    cuda = replace(TINY, torch_device="cuda")
    assert supernet_key(space, digits, cuda, 0) == supernet_key(space, digits, TINY, 0)
    sn_cpu = get_supernet(space, digits, runs_dir=tmp_path / "cpu", settings=TINY)
    sn_gpu = get_supernet(space, digits, runs_dir=tmp_path / "gpu", settings=cuda)
    assert next(sn_gpu.model.parameters()).is_cuda and sn_gpu.config["torch_device"].startswith("cuda:")
    assert sn_gpu.path.name == sn_cpu.path.name
    log = (sn_gpu.path / "train_log.csv").read_text()
    assert "cuda:" in log.splitlines()[1]
    a, b = sn_cpu.evaluate(ARCH, digits)[0], sn_gpu.evaluate(ARCH, digits)[0]
    assert abs(a - b) <= NOISE, (a, b)
    # the CUDA-trained cache loads on the CPU (and the CPU one on CUDA)
    on_cpu = get_supernet(space, digits, runs_dir=tmp_path / "gpu", settings=TINY, train=False)
    on_gpu = get_supernet(space, digits, runs_dir=tmp_path / "cpu", settings=cuda, train=False)
    assert not next(on_cpu.model.parameters()).is_cuda and next(on_gpu.model.parameters()).is_cuda
    for k, v in sn_gpu.model.weights.items():
        assert torch.equal(v.cpu(), on_cpu.model.weights[k]), k
    # the estimate of the search (fine-tuning + the chip's arithmetic) on both devices
    est = {}
    for dev in ("cpu", "cuda"):
        e = SupernetAccuracy(epochs_largest=1, epochs_elastic=1, batch_size=32, recal_images=64, finetune_steps=10)
        e.use_torch_device(dev)
        e.bind(space, digits, tmp_path / "cpu", seed=0)
        e.prepare(train=False)
        est[dev] = e.evaluate(space, space.parse(ARCH), digits).value
    assert abs(est["cpu"] - est["cuda"]) <= NOISE, est


def _exact_arithmetic_scores_the_same_weights_identically(digits, space) -> None:
    torch.manual_seed(0)
    net = space.build(space.parse(ARCH), quantize=True)
    net.train()
    with torch.no_grad():  # BatchNorm statistics from a few images, then the chip's arithmetic
        net(torch.from_numpy(digits.x_train[:64]))
    net = vendor_arithmetic(net)
    assert net.exact
    x = torch.from_numpy(digits.x_val)
    with torch.no_grad():
        cpu = net(x).argmax(1)
        gpu_net = net.to("cuda")
        from nas.train import exact_scoring

        with exact_scoring("cuda"):
            gpu = gpu_net(x.to("cuda")).argmax(1).cpu()
    assert torch.equal(cpu, gpu)
    assert top1(gpu_net, digits.x_val, digits.y_val)[0] == float((cpu.numpy() == digits.y_val).mean())


def _short_qat_and_qat(digits, space) -> None:
    arch = space.parse(ARCH)
    short = {}
    for dev in ("cpu", "cuda"):
        e = ShortTraining(epochs=2, train_images=300)
        e.use_torch_device(dev)
        short[dev] = e.evaluate(space, arch, digits).value
    assert abs(short["cpu"] - short["cuda"]) <= NOISE, short
    cfg = QatConfig(epochs=2, qat_epochs=2, anneal_epochs=1, init="scratch", export=False)
    figs = {}
    for dev in ("cpu", "cuda"):
        model, figs[dev] = train_network(ARCH, digits, replace(cfg, torch_device=dev), space=space, seed=0)
        assert next(model.parameters()).device.type == "cpu"  # returned on the CPU for the export
    assert figs["cuda"]["torch_device"].startswith("cuda:") and figs["cpu"]["torch_device"] == "cpu"
    for k in ("float_test_acc", "quant_test_acc"):  # float epochs in mixed precision on CUDA
        assert abs(figs["cpu"][k] - figs["cuda"][k]) <= 2 * NOISE, (k, figs)
