"""Meta-learned latency prediction for NAS search spaces.

>>> import predictors
>>> p = predictors.load("nasbench201")          # pretrained, shipped with the package
>>> q = p.adapt(archs, latencies_ms)            # archs must include p.ref_archs_
>>> q.predict(candidates)                       # numpy, milliseconds
>>> y, s = q.predict(candidates, return_std=True)
>>> q.save("my_device.npz"); predictors.load_file("my_device.npz")
"""

from __future__ import annotations

from ._active import POOL_SIZE, select_extra
from ._baselines import AnalyticFit, FlopsProxy, MetaSGD, NearestDevice, SampleGP
from ._cost import cost_feature_names, cost_features
from ._data import (
    SPACES,
    LatencyTable,
    help_meta,
    load_latency_table,
    protocol_split,
    select_references,
)
from ._errors import (
    ArchitectureError,
    ArtefactError,
    InputError,
    PredictorInputError,
    UnknownSpaceError,
)
from ._io import FORMAT_VERSION, list_pretrained, load, load_file
from ._metrics import all_metrics
from ._model import LatencyPredictor

__all__ = [
    "SPACES",
    "POOL_SIZE",
    "FORMAT_VERSION",
    "ArchitectureError",
    "AnalyticFit",
    "ArtefactError",
    "FlopsProxy",
    "InputError",
    "LatencyPredictor",
    "LatencyTable",
    "MetaSGD",
    "NearestDevice",
    "PredictorInputError",
    "SampleGP",
    "UnknownSpaceError",
    "all_metrics",
    "cost_feature_names",
    "cost_features",
    "help_meta",
    "list_pretrained",
    "load",
    "load_file",
    "load_latency_table",
    "select_extra",
    "select_references",
    "protocol_split",
]
