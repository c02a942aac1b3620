"""The device kit: the 10 reference architectures of a space as ONNX, ``measure.py`` and a README."""

from __future__ import annotations

import csv
import io
import os
import shutil
from pathlib import Path

from ._onnx import OPSET, KitError, check_buildable, export_onnx

__all__ = ["write_kit", "KIT_FILES"]

KIT_FILES = ("archs.csv", "measure.py", "README.md")

_README = """# Latency kit: {space}

The {what} of the `{space}` search space as ONNX models (batch 1, float32
input `input` of shape 1x{shape}, opset {opset}, random weights: latency does not depend on them),
and `measure.py`, which times them with onnxruntime and prints `arch,latency_ms` as CSV.

## Timing them on your device

Copy this folder to the device (phone under Termux, Raspberry Pi, any board with Python 3.8+):

    pip install numpy onnxruntime
    python measure.py > samples.csv

Then, on the machine with hw-nas:

    nas device register MY-DEVICE --space {space} --samples samples.csv

Registration adapts the predictor to every line of the file. It refuses the file if a reference model is missing, a latency is not a positive
number, or an architecture appears twice (it names the line); more samples (extra lines
`arch,latency_ms` of other {space} architectures) are welcome and refine the fit. It prints the
leave-one-out error: how well the adapted predictor predicts each sample from the others.

## How measure.py times

One onnxruntime session per model with a fixed thread count (`--threads`, default 1), batch 1,
{warmup} warm-up runs per model, then rounds: in each round every model (in a new random order, so
a slow period of the device hits all models alike) runs `--number` times and the median of those
runs is the round's value. The latency is the median of the round values (`--stat p25`: their
lower quartile). Rounds go on until every estimate's relative standard error is below `--tol`
(1%) or `--max-seconds` (120 s) pass; the spread (IQR and CV of the round values) is printed on
stderr, with a warning if the timings did not settle.

For stable numbers: plug the device in, close other apps, keep the screen on (phones slow down
when idle or hot), and use the same thread count you will deploy with. On a big.LITTLE phone,
pin to one core type (`taskset`), or the numbers mix fast and slow cores.

## Using onnxruntime's own perf tool instead

`onnxruntime_perf_test` (built with onnxruntime from source) times one model at a time:

    onnxruntime_perf_test -e cpu -x 1 -y 1 -r 200 ref_00.onnx

(`-x 1` one intra-op thread, `-r` repetitions). Write its average (or better, its P50) latency
per model into a CSV `arch,latency_ms` with the architecture strings of `archs.csv`.
"""


def write_kit(space: str, out: str | os.PathLike[str], *, force: bool = False, extra: int = 0,
              seed: int = 0) -> list[Path]:
    """Write the kit of ``space`` into folder ``out`` (created if needed); returns the files written.

    Args:
        space: search space.
        out: kit folder.
        force: overwrite an existing kit.
        extra: architectures to add after the 10 references, chosen by the shipped predictor's
            uncertainty (:func:`predictors.select_extra`, candidates drawn with ``seed``).
        seed: seed of the candidate pool of the extras.

    Raises:
        KitError: a space without torch modules, ``out`` already holding kit files (without
            ``force``) or being a file, or ``extra`` not an integer in 0..the pool size.
    """
    import predictors
    from search_spaces import get_space

    from . import _measure

    check_buildable(space)
    sp = get_space(space)
    predictor = predictors.load(space)
    refs = [sp.format(a) for a in predictor.ref_archs_]
    try:
        extras = [sp.format(a) for a in predictors.select_extra(predictor, extra, seed=seed)]
    except predictors.PredictorInputError as e:
        raise KitError(f"--extra: {e}") from None
    folder = Path(out)
    if folder.exists() and not folder.is_dir():
        raise KitError(f"{folder} exists and is not a folder")
    names = [f"ref_{i:02d}.onnx" for i in range(len(refs))] + [f"extra_{i:02d}.onnx" for i in range(len(extras))]
    taken = [n for n in (*names, *KIT_FILES) if (folder / n).exists()]
    if taken and not force:
        raise KitError(f"{folder} already holds a kit ({taken[0]}, ...); pass --force to overwrite it "
                       "or choose another --out")
    folder.mkdir(parents=True, exist_ok=True)
    written: list[Path] = []
    for name, arch in zip(names, refs + extras):
        written.append(Path(export_onnx(space, arch, folder / name)))
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(["file", "arch"])
    w.writerows(zip(names, refs + extras))
    (folder / "archs.csv").write_text(buf.getvalue())
    shutil.copyfile(_measure.__file__, folder / "measure.py")
    module = sp.build(refs[0])
    shape = "x".join(str(d) for d in module.input_size)
    what = (f"{len(refs)} reference architectures" if not extras else
            f"{len(refs)} reference architectures and {len(extras)} extra ones (`extra_*.onnx`: chosen by the "
            f"predictor's uncertainty, `nas device kit --extra {len(extras)} --seed {seed}`)")
    (folder / "README.md").write_text(_README.format(space=space, shape=shape, opset=OPSET, warmup=10, what=what))
    written += [folder / f for f in KIT_FILES]
    return written

