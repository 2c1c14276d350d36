"""Image sets for ``evaluate``: the :class:`ImageSet` type, folder loading and resizing to one size.

:func:`load_image_folder` reads a folder of 8/16-bit grayscale PNGs and
``.npy`` arrays (a 2-D array is one image, a 3-D ``(N, H, W)`` stack is ``N``
images named ``file.npy[i]``), in sorted file-name order. Store selections
are read into the same type by :mod:`breastflow.data.selection_loading`.
Nothing is silently skipped: unreadable files, files of other types, NaNs and
empty folders are :class:`InputError` naming the file. The container type (8/16-bit
PNG) never sets an evaluation's data range: :mod:`breastflow.evaluate.data_range`
takes it from the real set's values or ``--data-range``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

IMAGE_SUFFIXES = (".png", ".npy")
#: How :func:`resize_images` resizes (recorded in every evaluation result that used it).
RESIZE_PROTOCOL = "bilinear, antialiased, align_corners=False, float64, to (S, S) (aspect ratio not kept)"


class InputError(ValueError):
    """Bad evaluation input (files, pairing, set sizes); the message names the culprit."""


@dataclass(frozen=True)
class ImageSet:
    """Images loaded from one folder or store selection.

    Attributes:
        source: where they came from (folder path or selection string).
        names: one name per image (file name, ``file.npy[i]`` for stacks,
            ``<study>_z<slice:04d>`` for store selections).
        images: ``(H, W)`` arrays in their stored dtype (float64 for per-case scaled selections).
        meta: one row per image (``name``, ``study``, ``slice`` and, for store
            selections, ``vendor``, ``field_strength``, ``lesion_class`` ...), or ``None``.
    """

    source: str
    names: tuple[str, ...]
    images: tuple[np.ndarray, ...]
    meta: pd.DataFrame | None = None

    def __len__(self) -> int:
        return len(self.images)

    def where(self, name: str) -> str:
        """Where image ``name`` lives, for error messages."""
        return f"{self.source}/{name}" if not self.source.endswith("/") else f"{self.source}{name}"

    def subset(self, index: np.ndarray | list[int]) -> ImageSet:
        """The images at ``index`` (in that order), metadata included."""
        index = [int(i) for i in index]
        meta = None if self.meta is None else self.meta.iloc[index].reset_index(drop=True)
        return ImageSet(source=self.source, names=tuple(self.names[i] for i in index),
                        images=tuple(self.images[i] for i in index), meta=meta)

    def stack(self) -> np.ndarray:
        """All images as one ``(N, H, W)`` array.

        Raises:
            InputError: naming the first image whose shape differs from the first one's.
        """
        first = self.images[0].shape
        for name, img in zip(self.names, self.images, strict=True):
            if img.shape != first:
                raise InputError(f"{self.where(name)}: shape {img.shape} differs from {self.names[0]} {first}; "
                                 "this metric needs equal-size images: pass --resize N (EvaluationConfig.resize)")
        return np.stack(self.images)


def _read_png(path: Path) -> np.ndarray:
    from PIL import Image

    try:
        with Image.open(path) as im:
            mode = im.mode
            arr = np.array(im)
    except Exception as err:  # Pillow raises many types for broken files
        raise InputError(f"{path}: unreadable PNG ({err})") from err
    if mode == "L":
        return arr.astype(np.uint8, copy=False)
    if mode.startswith("I;16"):
        return arr.astype(np.uint16)
    if mode == "I":
        if arr.min() < 0 or arr.max() > 65535:
            raise InputError(f"{path}: 32-bit PNG values outside 0..65535")
        return arr.astype(np.uint16)
    raise InputError(f"{path}: PNG mode {mode!r} is not 8/16-bit grayscale")


def _read_npy(path: Path) -> tuple[list[np.ndarray], bool]:
    """Images of a .npy file and whether it was a 3-D stack."""
    try:
        arr = np.load(path, allow_pickle=False)
    except Exception as err:  # ValueError / OSError / EOFError for corrupt files
        raise InputError(f"{path}: unreadable .npy ({err})") from err
    if arr.dtype.kind not in "uif" or arr.ndim not in (2, 3):
        raise InputError(f"{path}: need a numeric 2-D image or 3-D (N, H, W) stack, got {arr.dtype} {arr.shape}")
    return ([arr], False) if arr.ndim == 2 else (list(arr), True)


def load_image_folder(folder: str | Path, what: str = "images") -> ImageSet:
    """Load every PNG / .npy image of ``folder`` in sorted file-name order.

    Args:
        folder: directory holding only image files (dot-files are ignored).
        what: set name for error messages (``"real"``, ``"fake"``).

    Raises:
        InputError: missing folder, a file of another type, an unreadable
            file, NaN / infinite values (naming the file), or no images.
    """
    folder = Path(folder)
    if not folder.is_dir():
        raise InputError(f"{what} folder {folder} does not exist or is not a directory")
    image_names: list[str] = []
    images: list[np.ndarray] = []
    for path in sorted(p for p in folder.iterdir() if not p.name.startswith(".")):
        suffix = path.suffix.lower()
        if path.is_dir() or suffix not in IMAGE_SUFFIXES:
            raise InputError(f"{path}: not a {'/'.join(IMAGE_SUFFIXES)} image file; {what} folders must hold only images")
        loaded, is_stack = ([_read_png(path)], False) if suffix == ".png" else _read_npy(path)
        for i, img in enumerate(loaded):
            name = f"{path.name}[{i}]" if is_stack else path.name
            if img.dtype.kind == "f" and not np.isfinite(img).all():
                raise InputError(f"{folder / name}: holds NaN or infinite values")
            image_names.append(name)
            images.append(img)
    if not images:
        raise InputError(f"{what} folder {folder} holds no images")
    return ImageSet(source=str(folder), names=tuple(image_names), images=tuple(images))


def indices_by_shape(images: Sequence[np.ndarray]) -> dict[tuple[int, ...], list[int]]:
    """Indices of ``images`` grouped by image shape, groups in order of first appearance."""
    by_shape: dict[tuple[int, ...], list[int]] = {}
    for i, img in enumerate(images):
        by_shape.setdefault(img.shape, []).append(i)
    return by_shape


def resize_images(images: tuple[np.ndarray, ...] | list[np.ndarray], size: int) -> np.ndarray:
    """Resize ``(H, W)`` images of any sizes to one ``(N, size, size)`` float64 stack (:data:`RESIZE_PROTOCOL`)."""
    import torch
    import torch.nn.functional as F

    out = np.empty((len(images), size, size), dtype=np.float64)
    for shape, index in indices_by_shape(images).items():
        block = np.stack([np.asarray(images[i], dtype=np.float64) for i in index])
        if shape == (size, size):
            out[index] = block
            continue
        x = torch.from_numpy(block)[:, None]
        out[index] = F.interpolate(x, size=(size, size), mode="bilinear", align_corners=False,
                                   antialias=True)[:, 0].numpy()
    return out
