"""Errors raised by the predictors package (all are :class:`search_spaces.InputError`)."""

from __future__ import annotations

from search_spaces import ArchitectureError, InputError, UnknownSpaceError

__all__ = ["PredictorInputError", "ArtefactError", "ArchitectureError", "UnknownSpaceError", "InputError"]


class PredictorInputError(InputError):
    """Bad samples for a predictor: NaN/negative/zero latency, mismatched lengths, missing references."""


class ArtefactError(InputError):
    """A predictor file that cannot be loaded: foreign, truncated, or written by a newer version."""
