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
``synthetic``             read ``series`` from the synthetic set ``NAME`` written by
                          ``breastflow generate`` (``synthetic/NAME/``) instead of the real
                          series; filters, lesion boxes and the per-case unit (the *real*
                          pre-contrast) stay the real study's, so ``store:///s?synthetic=g&series=post_1``
                          pairs slice for slice with ``store:///s?series=post_1``
========================  ===================================================================

Every image is named ``<study>_z<slice:04d>`` (:func:`image_name`); a folder of
synthetic images pairs with a selection when its files are named
``<study>_z<slice>.png`` / ``.npy`` or are 3-D ``<study>.npy`` volumes (image
``i`` = slice ``i``), see :func:`keys_from_names`. Reading the selected slices:
:func:`breastflow.data.selection_loading.load_selection`.
"""

from __future__ import annotations

import difflib
import re
from enum import Enum
from urllib.parse import parse_qsl

from pydantic import BaseModel, ConfigDict, Field, field_validator

from breastflow.data.image_sets import InputError
from breastflow.data.slice_choice import SliceChoice
from breastflow.store import layout
from breastflow.store.fs import is_remote
from breastflow.store.splits import Split

STORE_SCHEME = "store://"
_NAME_SLICE = re.compile(r"^(?P<study>[a-z0-9][a-z0-9_\-]*?)_z(?P<slice>\d+)(?:\.(?:png|npy))?$")
_STACK_SLICE = re.compile(r"^(?P<study>[a-z0-9][a-z0-9_\-]*)\.npy\[(?P<slice>\d+)\]$")


class SelectionError(InputError):
    """A selection string or its content is wrong; the message says what and how to fix it."""


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
        slices: slice choice; margin: lesion margin (fraction of Z); every: k of ``every``.
        scale: intensity scale policy.
        synthetic: name of a synthetic set to read ``series`` from; ``None`` = the real series.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    store: str = Field(min_length=1)
    series: str
    splits: tuple[Split, ...] | None = None
    vendors: tuple[str, ...] | None = None
    field_strengths: tuple[float, ...] | None = None
    studies: tuple[str, ...] | None = None
    annotated_only: bool = False
    slices: SliceChoice = SliceChoice.ALL
    margin: float = Field(default=0.05, ge=0.0, lt=1.0)
    every: int = Field(default=1, ge=1)
    scale: IntensityScale = IntensityScale.RAW
    synthetic: str | None = None

    @field_validator("series")
    @classmethod
    def _series_name(cls, value: str) -> str:
        return layout.check_name(value, "series role")

    @field_validator("synthetic")
    @classmethod
    def _synthetic_name(cls, value: str | None) -> str | None:
        return None if value is None else layout.check_name(value, "synthetic set name")

    def to_text(self) -> str:
        """The canonical selection string (parses back to an equal selection)."""
        query = [("series", self.series)]
        if self.synthetic is not None:
            query.insert(0, ("synthetic", self.synthetic))
        if self.splits is not None:
            query.append(("split", ",".join(s.value for s in self.splits)))
        for key, values in (("vendor", self.vendors), ("field_strength", self.field_strengths),
                            ("study", self.studies)):
            if values is not None:
                query.append((key, ",".join(str(v) for v in values)))
        if self.annotated_only:
            query.append(("annotated", "true"))
        query.append(("slices", self.slices.value))
        if self.slices is SliceChoice.LESION:
            query.append(("margin", repr(self.margin)))
        if self.slices is SliceChoice.EVERY:
            query.append(("every", str(self.every)))
        query.append(("scale", self.scale.value))
        base = self.store if is_remote(self.store) else f"{STORE_SCHEME}{self.store}"
        return base + "?" + "&".join(f"{k}={v}" for k, v in query)


SELECTION_KEYS = ("series", "split", "vendor", "field_strength", "study", "annotated", "slices", "margin", "every",
                  "scale", "synthetic")


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
            key, an unknown split / slice choice / scale, a malformed number.
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
            if key in ("series", "synthetic"):
                fields[key] = value
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
                fields["slices"] = SliceChoice(value)
            elif key == "scale":
                fields["scale"] = IntensityScale(value)
            else:
                fields[key] = float(value) if key == "margin" else int(value)
        except ValueError as err:
            choices = {"split": [s.value for s in Split], "slices": [p.value for p in SliceChoice],
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

