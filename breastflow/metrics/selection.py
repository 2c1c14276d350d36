"""Store selections: which stored axial slices an evaluation compares, read as images with metadata.

A selection names a store, one series role and filters, written as a URL::

    store:///abs/path/to/store?series=post_1&split=test&slices=lesion
    store://relative/store?series=pre&vendor=siemens&slices=every&every=4
    s3://bucket/prefix/store?series=post_1&split=train,val&scale=per-case

Keys (:data:`SELECTION_KEYS`; unknown keys are an error naming the nearest one):

========================  ===================================================================
``series`` (required)     series role: ``pre``, ``post_1`` ... ``t2``, ``mg_l_cc`` ...
``split``                 comma-separated ``train``/``val``/``test`` (default: every split)
``vendor``                comma-separated, case-insensitive substrings of the catalog vendor
``field_strength``        comma-separated tesla values (``1.5,3``)
``study``                 comma-separated study pseudonyms
``annotated``             ``true``: only studies with committed lesion annotations
``slices``                ``all`` (default), ``lesion`` (slices of a lesion box on the
                          series' grid, plus ``margin`` either side) or ``every`` (every k-th)
``margin``                for ``slices=lesion``: fraction of the study's slice count added
                          before the first and after the last slice of each lesion
                          (default 0.05, paper 003's "tumour slices plus 5 % either side"),
                          ``ceil(margin * Z)`` slices, clipped to the volume
``every``                 k for ``slices=every`` (slices 0, k, 2k ...)
``scale``                 ``raw`` (default: stored values) or ``per-case`` (rescale
                          slope/intercept applied, then divided by the 99th percentile of
                          the study's pre-contrast volume, so enhancement between phases is
                          kept; never per-phase min-max)
========================  ===================================================================

Every image is named ``<study>_z<slice:04d>``; a folder of synthetic images
pairs with a selection when its files are named ``<study>_z<slice>.png`` /
``.npy`` or are 3-D ``<study>.npy`` volumes (image ``i`` = slice ``i``), see
:func:`keys_from_names`. Lesion boxes come from the committed annotation
record (:mod:`breastflow.store.annotation_commit`) and index the pre-contrast
grid; they apply to another series of the study only when it has the same
``(Z, Y, X)`` shape.
"""

from __future__ import annotations

import difflib
import math
import re
from enum import Enum
from urllib.parse import parse_qsl

import numpy as np
import pandas as pd
from pydantic import BaseModel, ConfigDict, Field, field_validator

from breastflow.metrics.evaluate import ImageSet, InputError, load_image_folder
from breastflow.store import layout
from breastflow.store.fs import StoreLocation, is_remote
from breastflow.store.splits import Split

STORE_SCHEME = "store://"
PRE_SERIES = "pre"
#: lesion_class label of an annotated slice outside every lesion box.
NO_LESION = "none"
#: lesion_class label of a lesion whose class was not given.
UNKNOWN_CLASS = "unknown"
META_COLUMNS = ("name", "study", "patient", "series", "slice", "split", "vendor", "model", "field_strength",
                "lesion_class")
_NAME_SLICE = re.compile(r"^(?P<study>[a-z0-9][a-z0-9_\-]*?)_z(?P<slice>\d+)(?:\.(?:png|npy))?$")
_STACK_SLICE = re.compile(r"^(?P<study>[a-z0-9][a-z0-9_\-]*)\.npy\[(?P<slice>\d+)\]$")


class SelectionError(InputError):
    """A selection string or its content is wrong; the message says what and how to fix it."""


class SlicePolicy(str, Enum):
    """Which axial slices of each selected series are used."""

    ALL = "all"
    LESION = "lesion"
    EVERY = "every"


class IntensityScale(str, Enum):
    """How stored values become image intensities."""

    RAW = "raw"
    PER_CASE = "per-case"


class StoreSelection(BaseModel):
    """Slices of one series role in a store, with filters (see the module docstring for the URL form).

    Attributes:
        store: local path or remote URL of the store (no query).
        series: series role.
        splits: allowed splits; ``None`` = all.
        vendors: case-insensitive substrings of the catalog ``vendor``; ``None`` = all.
        field_strengths: allowed field strengths in tesla; ``None`` = all.
        studies: allowed study pseudonyms; ``None`` = all.
        annotated_only: keep only studies with committed annotations.
        slices: slice policy; margin: lesion margin (fraction of Z); every: k of ``every``.
        scale: intensity scale policy.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    store: str = Field(min_length=1)
    series: str
    splits: tuple[Split, ...] | None = None
    vendors: tuple[str, ...] | None = None
    field_strengths: tuple[float, ...] | None = None
    studies: tuple[str, ...] | None = None
    annotated_only: bool = False
    slices: SlicePolicy = SlicePolicy.ALL
    margin: float = Field(default=0.05, ge=0.0, lt=1.0)
    every: int = Field(default=1, ge=1)
    scale: IntensityScale = IntensityScale.RAW

    @field_validator("series")
    @classmethod
    def _series_name(cls, value: str) -> str:
        return layout.check_name(value, "series role")

    def to_text(self) -> str:
        """The canonical selection string (parses back to an equal selection)."""
        query = [("series", self.series)]
        if self.splits is not None:
            query.append(("split", ",".join(s.value for s in self.splits)))
        for key, values in (("vendor", self.vendors), ("field_strength", self.field_strengths),
                            ("study", self.studies)):
            if values is not None:
                query.append((key, ",".join(str(v) for v in values)))
        if self.annotated_only:
            query.append(("annotated", "true"))
        query.append(("slices", self.slices.value))
        if self.slices is SlicePolicy.LESION:
            query.append(("margin", repr(self.margin)))
        if self.slices is SlicePolicy.EVERY:
            query.append(("every", str(self.every)))
        query.append(("scale", self.scale.value))
        base = self.store if is_remote(self.store) else f"{STORE_SCHEME}{self.store}"
        return base + "?" + "&".join(f"{k}={v}" for k, v in query)


SELECTION_KEYS = ("series", "split", "vendor", "field_strength", "study", "annotated", "slices", "margin", "every",
                  "scale")


def is_store_selection(text: str) -> bool:
    """Whether ``text`` names a store selection (``store://...`` or a remote URL) rather than a folder."""
    return text.startswith(STORE_SCHEME) or is_remote(text)


def _items(value: str, key: str) -> tuple[str, ...]:
    items = tuple(v.strip() for v in value.split(",") if v.strip())
    if not items:
        raise SelectionError(f"selection key {key!r} is empty")
    return items


def parse_selection(text: str) -> StoreSelection:
    """Parse a selection string (see the module docstring).

    Raises:
        SelectionError: not a selection URL, no ``series``, an unknown or repeated
            key, an unknown split / slice policy / scale, a malformed number.
    """
    if not is_store_selection(text):
        raise SelectionError(f"{text!r} is not a store selection: write store:///path/to/store?series=post_1 "
                             "or s3://bucket/store?series=post_1")
    base, _, query = text.partition("?")
    store = base.removeprefix(STORE_SCHEME) if base.startswith(STORE_SCHEME) else base
    if not store:
        raise SelectionError(f"{text!r}: no store path before '?'")
    try:
        pairs = parse_qsl(query, keep_blank_values=True, strict_parsing=bool(query))
    except ValueError as err:
        raise SelectionError(f"{text!r}: malformed query ({err}); write key=value pairs joined by '&'") from err
    fields: dict[str, object] = {"store": store}
    seen: set[str] = set()
    for key, value in pairs:
        if key not in SELECTION_KEYS:
            near = difflib.get_close_matches(key, SELECTION_KEYS, n=1)
            hint = f"; did you mean {near[0]!r}?" if near else ""
            raise SelectionError(f"{text!r}: unknown selection key {key!r}{hint} (keys: {', '.join(SELECTION_KEYS)})")
        if key in seen:
            raise SelectionError(f"{text!r}: key {key!r} given twice; join values with ',' instead")
        seen.add(key)
        try:
            if key == "series":
                fields["series"] = value
            elif key == "split":
                fields["splits"] = tuple(Split(v) for v in _items(value, key))
            elif key == "vendor":
                fields["vendors"] = tuple(v.lower() for v in _items(value, key))
            elif key == "field_strength":
                fields["field_strengths"] = tuple(float(v) for v in _items(value, key))
            elif key == "study":
                fields["studies"] = _items(value, key)
            elif key == "annotated":
                if value.lower() not in ("true", "false"):
                    raise ValueError(f"annotated must be true or false, got {value!r}")
                fields["annotated_only"] = value.lower() == "true"
            elif key == "slices":
                fields["slices"] = SlicePolicy(value)
            elif key == "scale":
                fields["scale"] = IntensityScale(value)
            else:
                fields[key] = float(value) if key == "margin" else int(value)
        except ValueError as err:
            choices = {"split": [s.value for s in Split], "slices": [p.value for p in SlicePolicy],
                       "scale": [s.value for s in IntensityScale]}.get(key)
            extra = f" (choose from {', '.join(choices)})" if choices else ""
            raise SelectionError(f"{text!r}: bad value {value!r} for {key!r}{extra}: {err}") from err
    if "series" not in fields:
        raise SelectionError(f"{text!r}: the selection needs series=<role>, e.g. series=post_1")
    try:
        return StoreSelection(**fields)
    except ValueError as err:
        raise SelectionError(f"{text!r}: {err}") from err


def keys_from_names(names: tuple[str, ...] | list[str]) -> list[tuple[str, int, bool]] | None:
    """``(study, slice, from_volume_stack)`` parsed from image names, or ``None`` if any name does not parse.

    Understood names: ``<study>_z<slice>`` (a selection's image name, optionally
    with ``.png``/``.npy``) and ``<study>.npy[<slice>]`` (image ``slice`` of a 3-D
    volume file ``<study>.npy`` written in stored slice order).
    """
    keys = []
    for name in names:
        match = _NAME_SLICE.match(name)
        stack = False
        if match is None:
            match = _STACK_SLICE.match(name)
            stack = True
        if match is None:
            return None
        keys.append((match["study"], int(match["slice"]), stack))
    return keys


def image_name(study: str, z: int) -> str:
    """The name of slice ``z`` of ``study`` in a selection (and of a matching synthetic file)."""
    return f"{study}_z{z:04d}"


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
        if sel.slices is SlicePolicy.ALL:
            chosen = list(range(z))
        elif sel.slices is SlicePolicy.EVERY:
            chosen = list(range(0, z, sel.every))
        else:
            if boxes is None:
                unannotated.append(row.study)
                continue
            margin = math.ceil(sel.margin * z)
            picked: set[int] = set()
            for box in boxes:
                lo, hi = _box_slices(box, z)
                picked.update(range(max(0, lo - margin), min(z - 1, hi + margin) + 1))
            chosen = sorted(picked)
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
    """Batched slice reads: :class:`breastflow.data.slices.SliceReader` when present, else zarr's orthogonal indexing."""
    try:
        from breastflow.data.slices import SliceReader
    except ImportError:
        from breastflow.store.zarr_io import open_series_array

        return lambda study, series, index: np.asarray(open_series_array(loc, study, series).oindex[index, :, :])
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
    rows = _filter_catalog(sel, catalog, text)
    meta = plan_slices(sel, loc, rows, catalog)
    images: list[np.ndarray] = []
    scales: list[float] = []
    read = _slice_reader(loc)
    for study, group in meta.groupby("study", sort=True):
        block = read(study, sel.series, group["slice"].to_numpy())
        if sel.scale is IntensityScale.PER_CASE:
            slope, intercept = _rescale(series_attrs(loc, study, sel.series).get("breastflow", {}))
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
