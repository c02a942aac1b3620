"""nas.train: --torch-device (choice, resolution, one-line error), data on the device, mixed
precision only on CUDA, progress events. Runs on any machine: CUDA is hidden where asserted."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from nas.cli import build_parser, main
from nas.train import (
    check_torch_device,
    eval_batch,
    mixed_precision,
    on_device,
    progress,
    progress_to,
    resolve_torch_device,
    tensors,
    torch_device_name,
)
from search_spaces import InputError


@pytest.fixture
def no_cuda(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)


def test_choices_and_auto_is_the_cpu_without_cuda(no_cuda) -> None:
    assert [check_torch_device(c) for c in ("auto", "CPU", " cuda ")] == ["auto", "cpu", "cuda"]
    with pytest.raises(InputError, match="unknown --torch-device 'gpu'; use auto, cpu or cuda"):
        check_torch_device("gpu")
    assert resolve_torch_device("auto") == "cpu" and resolve_torch_device("cpu") == "cpu"
    assert torch_device_name("cpu") == "cpu"
    with pytest.raises(InputError) as e:
        resolve_torch_device("cuda")
    msg = str(e.value)
    assert "\n" not in msg and "no CUDA device" in msg and "--torch-device cpu" in msg


def test_flag_parses_on_search_and_qat() -> None:
    p = build_parser()
    assert p.parse_args(["search", "--device", "max78000"]).torch_device == "auto"
    assert p.parse_args(["search", "--device", "max78000", "--torch-device", "cpu"]).torch_device == "cpu"
    assert p.parse_args(["qat", "RUN", "--torch-device", "cuda"]).torch_device == "cuda"
    with pytest.raises(SystemExit) as e:
        p.parse_args(["qat", "RUN", "--torch-device", "gpu"])
    assert e.value.code == 2


@pytest.mark.parametrize("argv", [
    ["search", "--device", "max78000", "--budget", "100KB", "--torch-device", "cuda", "--trials", "1"],
    ["search", "--device", "max78000", "--torch-device", "cuda", "--no-qat", "--accuracy", "proxy"],
    ["qat", "some-run", "--torch-device", "cuda"],
])
def test_cuda_without_cuda_is_one_line_exit_2_nothing_written(argv, tmp_path, capsys, no_cuda) -> None:
    runs = tmp_path / "runs"
    assert main([*argv, "--runs-dir", str(runs)]) == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and "--torch-device cuda" in err and "--torch-device cpu" in err
    assert not runs.exists()


def test_cpu_tensors_share_the_arrays_and_keep_the_batches() -> None:
    a = np.arange(12, dtype=np.float32).reshape(3, 4)
    t = on_device(a, "cpu")
    assert t.device.type == "cpu" and np.shares_memory(t.numpy(), a)  # no copy on the CPU
    assert eval_batch("cpu", 256) == 256 and eval_batch("cuda:0", 256) >= 256


def test_tensors_are_the_first_images_of_each_split() -> None:
    from nas import load_dataset

    data = load_dataset(None, seed=0)
    xs = tensors(data, 10, 5, device="cpu")
    assert [len(t) for t in xs] == [10, 10, 5, 5, 5, 5]
    assert np.array_equal(xs[0].numpy(), data.x_train[:10]) and np.array_equal(xs[5].numpy(), data.y_test[:5])


def test_no_mixed_precision_on_the_cpu() -> None:
    autocast, scaler = mixed_precision("cpu", True)
    assert scaler is None
    with autocast():
        out = torch.nn.functional.linear(torch.ones(2, 3), torch.ones(4, 3))
    assert out.dtype == torch.float32


def test_progress_goes_to_the_listener_of_the_block_only() -> None:
    got: list[tuple[str, int, int]] = []
    progress("supernet", 0, 4)  # nobody listens: nothing happens
    with progress_to(lambda *e: got.append(e)):
        progress("supernet", 1, 4)
        with progress_to(None):
            progress("supernet", 2, 4)
        progress("supernet", 3, 4)
    progress("supernet", 4, 4)
    assert got == [("supernet", 1, 4), ("supernet", 3, 4)]
