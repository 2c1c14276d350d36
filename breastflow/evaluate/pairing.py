"""Pairing two image sets and sharing their labels for ``evaluate`` (the data range: :mod:`breastflow.evaluate.data_range`).

* Two folders pair **by file name** (the original behaviour).
* When either set comes from a store selection, or both folders name their
  files ``<study>_z<slice>.png`` / ``.npy`` / ``<study>.npy`` volumes, the sets
  pair **by (study, slice)** (:func:`breastflow.data.selection.keys_from_names`).
  Every real image needs exactly one synthetic counterpart of the same shape;
  synthetic images without a real counterpart are an error, except slices of
  a whole-volume ``<study>.npy`` file, which are dropped (and counted in a note)
  because a volume holds every slice by construction.
* The paired synthetic set takes the real set's metadata (vendor, field
  strength, lesion class), so fairness groups are identical on both sides; an
  unpaired keyed synthetic set takes the labels of its study / slice from the
  real set (:func:`inherit_labels`).
"""

from __future__ import annotations

import numpy as np

from breastflow.data.image_sets import ImageSet, InputError

KEY_COLUMNS = ("study", "slice")
#: Labels that belong to a study (copied by study) vs to one slice (copied by (study, slice)).
STUDY_LABELS = ("patient", "split", "vendor", "model", "field_strength")
SLICE_LABELS = ("lesion_class",)


def keys_of(images: ImageSet) -> list[tuple[str, int]] | None:
    """``(study, slice)`` of every image, or ``None`` when the set is not keyed."""
    if images.meta is None or not set(KEY_COLUMNS) <= set(images.meta.columns):
        return None
    return [(str(s), int(z)) for s, z in zip(images.meta["study"], images.meta["slice"], strict=True)]


def from_store(images: ImageSet) -> bool:
    """Whether ``images`` was read from a store selection."""
    return images.meta is not None and "series" in images.meta.columns


def _pair_by_name(real: ImageSet, fake: ImageSet) -> ImageSet:
    """Reorder ``fake`` to ``real``'s name order, checking every pair exists and matches in shape."""
    fake_by_name = dict(zip(fake.names, fake.images, strict=True))
    missing = [n for n in real.names if n not in fake_by_name]
    if missing:
        raise InputError(f"paired: {fake.where(missing[0])} missing (no synthetic counterpart of "
                         f"{real.where(missing[0])}; {len(missing)} missing)")
    extra = sorted(set(fake.names) - set(real.names))
    if extra:
        raise InputError(f"paired: {fake.where(extra[0])} has no real counterpart in {real.source} ({len(extra)} unmatched)")
    for name, img in zip(real.names, real.images, strict=True):
        if fake_by_name[name].shape != img.shape:
            raise InputError(f"paired: {fake.where(name)} shape {fake_by_name[name].shape} != real {img.shape}")
    return ImageSet(source=fake.source, names=real.names, images=tuple(fake_by_name[n] for n in real.names))


def _unique(keys: list[tuple[str, int]], images: ImageSet) -> None:
    seen: dict[tuple[str, int], str] = {}
    for key, name in zip(keys, images.names, strict=True):
        if key in seen:
            raise InputError(f"paired: {images.where(name)} and {images.where(seen[key])} are both study {key[0]} "
                             f"slice {key[1]}; each (study, slice) may appear once")
        seen[key] = name


def pair_sets(real: ImageSet, fake: ImageSet, notes: list[str]) -> ImageSet:
    """``fake`` reordered to pair with ``real`` image by image (see the module docstring).

    Args:
        real, fake: the two sets.
        notes: receives a line when volume slices without a real counterpart are dropped.

    Raises:
        InputError: a real image without a counterpart, an unmatched synthetic
            image, duplicate keys, a shape mismatch, or one keyed and one unkeyed set.
    """
    from breastflow.data.selection import image_name

    real_keys, fake_keys = keys_of(real), keys_of(fake)
    if real_keys is None and fake_keys is None:
        return _pair_by_name(real, fake)
    if real_keys is None or fake_keys is None:
        keyed, other, side = (fake, real, "real") if real_keys is None else (real, fake, "fake")
        raise InputError(f"paired: {keyed.source} pairs by (study, slice), but the {side} images in {other.source} "
                         f"are not named by study and slice (e.g. {other.names[0]}); name them "
                         "<study>_z<slice>.png / .npy, or save each study as a (Z, H, W) <study>.npy volume")
    _unique(real_keys, real)
    _unique(fake_keys, fake)
    fake_index = {key: i for i, key in enumerate(fake_keys)}
    missing = [(name, key) for name, key in zip(real.names, real_keys, strict=True) if key not in fake_index]
    if missing:
        name, key = missing[0]
        raise InputError(f"paired: no synthetic counterpart of {real.where(name)} (study {key[0]} slice {key[1]}: "
                         f"expected {image_name(*key)} in {fake.source}; {len(missing)} missing). Give both "
                         "selections the same split / slices / filters")
    wanted = set(real_keys)
    extra = [i for i, key in enumerate(fake_keys) if key not in wanted]
    from_stack = fake.meta["from_stack"].to_numpy(bool) if "from_stack" in fake.meta.columns \
        else np.zeros(len(fake), bool)
    loose = [i for i in extra if not from_stack[i]]
    if loose:
        raise InputError(f"paired: {fake.where(fake.names[loose[0]])} has no real counterpart in {real.source} "
                         f"({len(loose)} unmatched); give both selections the same split / slices / filters")
    if extra:
        notes.append(f"{len(extra)} slices of synthetic <study>.npy volumes have no real counterpart in the real "
                     "selection and were not used")
    index = [fake_index[key] for key in real_keys]
    for name, i, img in zip(real.names, index, real.images, strict=True):
        if fake.images[i].shape != img.shape:
            raise InputError(f"paired: {fake.where(fake.names[i])} shape {fake.images[i].shape} != real "
                             f"{real.where(name)} {img.shape}")
    paired = fake.subset(index)
    return ImageSet(source=fake.source, names=paired.names, images=paired.images, meta=real.meta)


def inherit_labels(fake: ImageSet, real: ImageSet) -> ImageSet:
    """Give a keyed synthetic set without labels the labels of its studies / slices in ``real``.

    A set that already carries labels (a store selection) or is not keyed is returned unchanged.
    """
    fake_keys = keys_of(fake)
    if fake_keys is None or real.meta is None or from_store(fake) or keys_of(real) is None:
        return fake
    meta = fake.meta.copy()
    study_rows = real.meta.drop_duplicates("study").set_index("study")
    for column in STUDY_LABELS:
        if column in study_rows.columns:
            meta[column] = [study_rows[column].get(s) for s, _ in fake_keys]
    slice_rows = real.meta.set_index(list(KEY_COLUMNS))
    for column in SLICE_LABELS:
        if column in slice_rows.columns:
            lookup = slice_rows[column].to_dict()
            meta[column] = [lookup.get(key) for key in fake_keys]
    return ImageSet(source=fake.source, names=fake.names, images=fake.images, meta=meta)
