"""Data sets of a search (built-in MNIST subset, ``.npz`` files, image folders, MNIST-format IDX
files, CIFAR-10/100 python batches) and the vendor's training augmentation."""

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
from ._published import FASHION_MNIST_CLASSES, VAL_FRACTION, load_cifar, load_idx

__all__ = [
    "AUGMENT_CHOICES",
    "IMAGE_SUFFIXES",
    "Augment",
    "DataError",
    "FASHION_MNIST_CLASSES",
    "Dataset",
    "VAL_FRACTION",
    "load_cifar",
    "load_dataset",
    "load_idx",
    "load_image_folder",
    "load_mnist5k",
    "load_npz",
    "random_affine",
    "to_vendor_range",
]
