"""Data sets of a search (built-in MNIST subset, ``.npz`` files, image folders) and the vendor's
training augmentation."""

from __future__ import annotations

from ._augment import AUGMENT_CHOICES, Augment, random_affine
from ._data import (
    IMAGE_SUFFIXES,
    DataError,
    Dataset,
    load_dataset,
    load_image_folder,
    load_mnist5k,
    load_npz,
    to_vendor_range,
)

__all__ = [
    "AUGMENT_CHOICES",
    "IMAGE_SUFFIXES",
    "Augment",
    "DataError",
    "Dataset",
    "load_dataset",
    "load_image_folder",
    "load_mnist5k",
    "load_npz",
    "random_affine",
    "to_vendor_range",
]
