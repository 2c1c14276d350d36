"""Reading a store selection: the selected slices as images with a metadata table.

The catalog is filtered by the selection's keys (:mod:`breastflow.data.selection`),
then :func:`plan_slices` picks the slices of each series and labels them, and
:func:`load_selection` reads them in batches (optionally scaled per case).
Lesion boxes come from the committed annotation record
(:mod:`breastflow.store.annotation_commit`) and index the pre-contrast grid;
they apply to another series of the study only when it has the same
``(Z, Y, X)`` shape. Boxes stay inclusive and 0-based (the data layer's
convention, :mod:`breastflow.data`) throughout. :func:`load_input` reads either a selection or a folder.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from breastflow.data.image_sets import ImageSet, load_image_folder
from breastflow.data.selection import (
    IntensityScale,
    SelectionError,
    StoreSelection,
    image_name,
    is_store_selection,
    keys_from_names,
    parse_selection,
)
from breastflow.data.slice_choice import MarginBasis, SliceChoice, lesion_slices
from breastflow.store.fs import StoreLocation

PRE_SERIES = "pre"
#: lesion_class label of an annotated slice outside every lesion box.
NO_LESION = "none"
#: lesion_class label of a lesion whose class was not given.
UNKNOWN_CLASS = "unknown"
META_COLUMNS = ("name", "study", "patient", "series", "slice", "split", "vendor", "model", "field_strength",
                "lesion_class")


def _filter_catalog(sel: StoreSelection, catalog: pd.DataFrame, text: str) -> pd.DataFrame:
    if catalog.empty:
        raise SelectionError(f"{text}: store {sel.store} has no committed series (is it a breastflow store?)")
    rows = catalog[catalog.series == sel.series]
    if rows.empty:
        raise SelectionError(f"{text}: unknown series role {sel.series!r}; the store has "
                             f"{', '.join(sorted(catalog.series.unique()))}")
    steps: list[tuple[str, pd.Series]] = []
    if sel.splits is not None:
        steps.append((f"split in {[s.value for s in sel.splits]} (present: {sorted(rows.split.unique())})",
                      rows.split.isin([s.value for s in sel.splits])))
    if sel.vendors is not None:
        vendor = rows.vendor.fillna("").str.lower()
        steps.append((f"vendor matching {list(sel.vendors)} (present: {sorted(rows.vendor.dropna().unique())})",
                      vendor.apply(lambda v: any(s in v for s in sel.vendors))))
    if sel.field_strengths is not None:
        fs = rows.field_strength_t.astype("float64").to_numpy()
        steps.append((f"field strength in {list(sel.field_strengths)}",
                      pd.Series(np.isclose(fs[:, None], np.asarray(sel.field_strengths)[None]).any(1), rows.index)))
    if sel.studies is not None:
        unknown = sorted(set(sel.studies) - set(catalog.study))
        if unknown:
            raise SelectionError(f"{text}: study {unknown[0]} is not in the store ({len(unknown)} unknown)")
        steps.append(("the listed studies", rows.study.isin(sel.studies)))
    if sel.annotated_only:
        steps.append(("annotated studies", rows.annotated.astype(bool)))
    for what, keep in steps:
        rows = rows[keep.loc[rows.index]]
        if rows.empty:
            raise SelectionError(f"{text}: empty selection: no {sel.series} series left after filtering by {what}")
    return rows.sort_values("study")


def _study_boxes(loc: StoreLocation, row: pd.Series, catalog: pd.DataFrame, sel: StoreSelection) -> list | None:
    """The study's lesion boxes on the selected series' grid; ``None`` when not annotated."""
    from breastflow.store.annotation_commit import read_annotation_commit

    if not bool(row.annotated):
        return None
    record = read_annotation_commit(loc, row.study)
    if record is None:
        return None
    shape = (int(row.z), int(row.y), int(row.x))
    boxes = []
    for box in record.boxes:
        if box.series == sel.series:
            boxes.append(box)
            continue
        other = catalog[(catalog.study == row.study) & (catalog.series == box.series)]
        if other.empty:
            continue
        other_shape = (int(other.z.iloc[0]), int(other.y.iloc[0]), int(other.x.iloc[0]))
        if other_shape != shape:
            raise SelectionError(f"study {row.study}: lesion boxes index the {box.series} grid {other_shape}, "
                                 f"but {sel.series} has shape {shape}; lesion slices cannot be mapped")
        boxes.append(box)
    return boxes


def _box_slices(box, z: int) -> tuple[int, int]:
    return (0, 0) if box.start_slice is None else (box.start_slice, min(box.end_slice, z - 1))


def plan_slices(sel: StoreSelection, loc: StoreLocation, rows: pd.DataFrame, catalog: pd.DataFrame) -> pd.DataFrame:
    """One metadata row per selected slice (no pixels read), in (study, slice) order.

    Raises:
        SelectionError: ``slices=lesion`` on a study without annotations, or no slice selected.
    """
    records = []
    unannotated = []
    for _, row in rows.iterrows():
        z = int(row.z)
        boxes = _study_boxes(loc, row, catalog, sel)
        if sel.slices is SliceChoice.ALL:
            chosen = list(range(z))
        elif sel.slices is SliceChoice.EVERY:
            chosen = list(range(0, z, sel.every))
        else:
            if boxes is None:
                unannotated.append(row.study)
                continue
            # one lesion-slice rule with the training datasets; the margin is a fraction of Z here
            chosen = lesion_slices(boxes, z, sel.margin, MarginBasis.VOLUME_DEPTH)
            if any(box.start_slice is None for box in boxes):  # projection (mammography) boxes: slice 0
                chosen = sorted({0, *chosen})
        for k in chosen:
            if boxes is None:
                label = None
            else:
                classes = {b.lesion_class or UNKNOWN_CLASS for b in boxes
                           if _box_slices(b, z)[0] <= k <= _box_slices(b, z)[1]}
                label = "+".join(sorted(classes)) if classes else NO_LESION
            fs = row.field_strength_t
            records.append({"name": image_name(row.study, k), "study": row.study, "patient": row.patient,
                            "series": row.series, "slice": k, "split": row.split, "vendor": row.vendor,
                            "model": row.model, "field_strength": None if pd.isna(fs) else float(fs),
                            "lesion_class": label})
    if unannotated:
        raise SelectionError(f"{sel.to_text()}: slices=lesion needs lesion annotations, and {len(unannotated)} "
                             f"selected studies have none (e.g. {unannotated[0]}); ingest their annotations or "
                             "add annotated=true")
    if not records:
        raise SelectionError(f"{sel.to_text()}: empty selection: {len(rows)} series matched but no slice was selected "
                             f"(slices={sel.slices.value}; annotated studies without lesions have no lesion slices)")
    return pd.DataFrame(records, columns=list(META_COLUMNS))


def _rescale(attrs: dict) -> tuple[float, float]:
    slope = attrs.get("rescale_slope")
    intercept = attrs.get("rescale_intercept")
    return (1.0 if slope is None else float(slope)), (0.0 if intercept is None else float(intercept))


def pre_contrast_scale(loc: StoreLocation, study: str) -> float:
    """99th percentile of the study's pre-contrast volume (rescale applied): the per-case intensity unit.

    Raises:
        SelectionError: no pre-contrast series, or a non-positive percentile.
    """
    from breastflow.store.zarr_io import open_series_array, series_attrs

    try:
        volume = open_series_array(loc, study, PRE_SERIES)[:]
    except FileNotFoundError as err:
        raise SelectionError(f"scale=per-case: study {study} has no pre-contrast series to scale by") from err
    slope, intercept = _rescale(series_attrs(loc, study, PRE_SERIES).get("breastflow", {}))
    value = float(np.percentile(volume.astype(np.float64) * slope + intercept, 99))
    if not value > 0:
        raise SelectionError(f"scale=per-case: the pre-contrast 99th percentile of study {study} is {value}; "
                             "cannot scale by it (use scale=raw)")
    return value


def _slice_reader(loc: StoreLocation):
    """Batched slice reads through :class:`breastflow.data.slices.SliceReader`."""
    from breastflow.data.slices import SliceReader

    reader = SliceReader(loc)
    return lambda study, series, index: reader.read_slices(study, series, [int(i) for i in index])


def load_selection(selection: StoreSelection | str, what: str = "images") -> ImageSet:
    """Read the selected slices as images plus a metadata table.

    Args:
        selection: a :class:`StoreSelection` or its string form.
        what: set name for error messages (``"real"``, ``"fake"``).

    Returns:
        An :class:`ImageSet` whose images are ``(H, W)`` arrays (stored dtype for
        ``scale=raw``, float64 for ``per-case``), named ``<study>_z<slice:04d>``,
        with ``meta`` holding :data:`META_COLUMNS` (plus ``case_scale`` for per-case).

    Raises:
        SelectionError: see :func:`parse_selection`, :func:`plan_slices`; an empty store,
            unknown series role or split, filters matching nothing.
    """
    from breastflow.store.catalog import read_catalog
    from breastflow.store.zarr_io import series_attrs

    sel = parse_selection(selection) if isinstance(selection, str) else selection
    text = f"{what} selection {sel.to_text()}"
    loc = StoreLocation.from_url(sel.store)
    catalog = read_catalog(loc)
    pixels, series_rows = loc, catalog
    if sel.synthetic is not None:  # pixels from synthetic/<name>/; catalog, boxes and per-case unit stay real
        from breastflow.generate.synthetic import (
            SyntheticSetError,
            synthetic_catalog,
            synthetic_location,
        )

        try:
            series_rows = synthetic_catalog(loc, sel.synthetic, catalog)
        except SyntheticSetError as err:
            raise SelectionError(f"{text}: {err}") from err
        if series_rows.empty:
            raise SelectionError(f"{text}: synthetic set {sel.synthetic!r} holds no series of this store's catalog")
        pixels = synthetic_location(loc, sel.synthetic)
    rows = _filter_catalog(sel, series_rows, text)
    meta = plan_slices(sel, loc, rows, catalog)
    images: list[np.ndarray] = []
    scales: list[float] = []
    read = _slice_reader(pixels)
    for study, group in meta.groupby("study", sort=True):
        block = read(study, sel.series, group["slice"].to_numpy())
        if sel.scale is IntensityScale.PER_CASE:
            slope, intercept = _rescale(series_attrs(pixels, study, sel.series).get("breastflow", {}))
            unit = pre_contrast_scale(loc, study)
            block = (block.astype(np.float64) * slope + intercept) / unit
            scales += [unit] * len(group)
        images.extend(block)
    if sel.scale is IntensityScale.PER_CASE:
        meta = meta.assign(case_scale=scales)
    return ImageSet(source=sel.to_text(), names=tuple(meta["name"]), images=tuple(images),
                    meta=meta.reset_index(drop=True))


def load_input(text: str, what: str = "images") -> ImageSet:
    """A store selection (see :func:`is_store_selection`) or a folder of PNG / ``.npy`` images.

    Folder images whose names parse with :func:`keys_from_names` get a ``meta``
    table with ``study`` and ``slice`` (for pairing with a selection).
    """
    if is_store_selection(text):
        return load_selection(text, what)
    images = load_image_folder(text, what)
    keys = keys_from_names(images.names)
    if keys is None:
        return images
    meta = pd.DataFrame({"name": images.names, "study": [k[0] for k in keys], "slice": [k[1] for k in keys],
                         "from_stack": [k[2] for k in keys]})
    return ImageSet(source=images.source, names=images.names, images=images.images, meta=meta)
