"""Training-time image augmentation: the vendor's MNIST recipe, batched in torch.

ai8x-training's MNIST loader trains with ``RandomCrop(28, padding=4)`` followed by
``RandomAffine(degrees=20, translate=(0.1, 0.1), shear=5)`` on images whose background is black
(filled before normalisation, so -1 in the MAX78000 input range). :func:`random_affine` draws the
same transformations per image (a shift of up to ``pad`` pixels, a rotation, a translation of up
to ``translate`` of the image size, an x-shear) and applies them as one affine map with
``grid_sample``; pixels from outside the image take ``fill``. Sequences (``[N, C, L]``) are
returned unchanged.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

__all__ = ["Augment", "AUGMENT_CHOICES", "random_affine"]

AUGMENT_CHOICES = ("vendor", "none")


@dataclass(frozen=True)
class Augment:
    """Parameters of :func:`random_affine` (defaults: the vendor's MNIST recipe).

    Args:
        pad: random crop padding in pixels (shift of up to ``pad`` pixels each way).
        degrees: rotation drawn from ``[-degrees, degrees]``.
        translate: translation drawn from ``[-translate, translate]`` times the image size.
        shear: x-shear angle drawn from ``[-shear, shear]`` degrees.
        fill: value of pixels from outside the image (None: the batch minimum, i.e. black).
    """

    pad: int = 4
    degrees: float = 20.0
    translate: float = 0.1
    shear: float = 5.0
    fill: float | None = None


def random_affine(x: Any, gen: Any, aug: Augment | None = None) -> Any:
    """A randomly transformed copy of an image batch ``x`` ``[N, C, H, W]`` (torch tensor).

    ``gen``: a ``torch.Generator`` (the draws are reproducible). Integer shifts as in a random
    crop, then rotation, translation and shear with bilinear resampling.
    """
    import torch
    from torch.nn import functional as F

    aug = aug or Augment()
    if x.dim() != 4 or len(x) == 0:
        return x
    n, _, h, w = x.shape

    def u(lo: float, hi: float) -> Any:
        return lo + (hi - lo) * torch.rand(n, generator=gen, dtype=torch.float64)

    rot = torch.deg2rad(u(-aug.degrees, aug.degrees))
    sh = torch.deg2rad(u(-aug.shear, aug.shear))
    # pixel shifts: the crop's integer shift plus the affine's translation (rounded, as torchvision)
    crop_x = torch.randint(-aug.pad, aug.pad + 1, (n,), generator=gen).double()
    crop_y = torch.randint(-aug.pad, aug.pad + 1, (n,), generator=gen).double()
    tx = crop_x + torch.round(u(-aug.translate, aug.translate) * w)
    ty = crop_y + torch.round(u(-aug.translate, aug.translate) * h)
    # output pixel -> input pixel (centred pixel coordinates): rotation times x-shear, then shift
    cos, sin, tan = torch.cos(rot), torch.sin(rot), torch.tan(sh)
    a11, a12 = cos, cos * tan - sin
    a21, a22 = sin, sin * tan + cos
    # to grid_sample's normalised coordinates (align_corners=False): u_pix = u_norm * size / 2
    theta = torch.zeros(n, 2, 3, dtype=torch.float64)
    theta[:, 0, 0] = a11
    theta[:, 0, 1] = a12 * h / w
    theta[:, 1, 0] = a21 * w / h
    theta[:, 1, 1] = a22
    theta[:, 0, 2] = -2 * tx / w
    theta[:, 1, 2] = -2 * ty / h
    grid = F.affine_grid(theta.to(device=x.device, dtype=x.dtype), list(x.shape), align_corners=False)
    fill = float(x.min()) if aug.fill is None else float(aug.fill)
    out = F.grid_sample(x - fill, grid, mode="bilinear", padding_mode="zeros", align_corners=False)
    return out + fill
