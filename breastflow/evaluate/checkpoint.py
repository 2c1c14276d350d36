"""One checkpoint -> one flat metric dict: generate the selection's split, compare it with the real slices.

:func:`evaluate_checkpoint` is what ``breastflow select`` runs once per checkpoint (one Ray Tune trial each):

1. load the checkpoint (:func:`breastflow.train.checkpoint.load_checkpoint`; with
   ``expect_dataset_version`` a checkpoint trained on other data is refused);
2. generate the selection's split from it into ``synthetic/<eval name>`` (:func:`eval_set_name`,
   :func:`breastflow.generate.run.generate_with_model`; the set is kept, the report's sample grid reads it);
3. read the real selection and the same selection with ``synthetic=<eval name>`` (pixels from the
   synthetic set, slices, boxes and per-case unit from the real study), pair them by ``(study, slice)``
   and run :func:`breastflow.evaluate.sets.evaluate_sets` (``paired=True``), real features through the
   optional :class:`~breastflow.metrics.cache.FeatureCache`;
4. lesion-box (ROI) variants ``roi_mse, roi_mae, roi_psnr, roi_ssim`` (:func:`roi_values`).

The real set's cache key (:func:`real_set_key`) is its :func:`breastflow.data.version.dataset_version`
(the series it reads, their pre-contrast unit series and annotations) plus the selection string.
"""

from __future__ import annotations

import hashlib
import time
from dataclasses import dataclass, field

import numpy as np

from breastflow.data.image_sets import ImageSet, InputError
from breastflow.data.selection import IntensityScale, StoreSelection, parse_selection
from breastflow.data.slice_choice import SliceChoice
from breastflow.evaluate.config import EvaluationConfig
from breastflow.metrics import names
from breastflow.metrics.cache import FeatureCache
from breastflow.store import layout
from breastflow.store.fs import StoreLocation

#: prefix of the synthetic sets written by checkpoint evaluation (``synthetic/eval-<model>-<run>-e<epoch>``)
EVAL_SET_PREFIX = "eval"
#: evaluation metrics computed in :attr:`EvaluationConfig.feature_space`
FEATURE_SPACE_METRICS = (names.NN_ACCURACY, "precision_recall", "density_coverage")


def eval_set_name(model: str, run: str, epoch: int) -> str:
    """Name of the synthetic set a checkpoint's evaluation writes: ``eval-<model>-<run>-e<epoch>``.

    Names longer than 64 characters keep their start and end a 10-hex sha256 of the whole name.
    """
    name = f"{EVAL_SET_PREFIX}-{model}-{run}-e{int(epoch)}".lower()
    if len(name) > 64:
        digest = hashlib.sha256(name.encode()).hexdigest()[:10]
        name = f"{name[:40]}-{digest}-e{int(epoch)}"[:64]
    return layout.check_name(name, "synthetic set name")


def _as_selection(selection: str | StoreSelection) -> StoreSelection:
    return parse_selection(selection) if isinstance(selection, str) else selection


def real_set_key(selection: str | StoreSelection, real: ImageSet | None = None) -> str:
    """What the real set of ``selection`` is, for cache keys: ``<dataset_version>|<selection string>``.

    The dataset version covers the selected series of every study read, their ``pre``
    series (the per-case unit) and, for ``slices=lesion``, their annotations.

    Args:
        selection: the real selection.
        real: the set already read (its ``meta.study`` names the studies); read here when ``None``.
    """
    from breastflow.data.selection_loading import PRE_SERIES, load_selection
    from breastflow.data.version import ANNOTATIONS, dataset_version

    sel = _as_selection(selection)
    real = load_selection(sel, "real") if real is None else real
    studies = sorted(set(real.meta["study"]))
    keys = [(s, sel.series) for s in studies]
    if sel.scale is IntensityScale.PER_CASE:
        keys += [(s, PRE_SERIES) for s in studies]
    if sel.slices is SliceChoice.LESION:
        keys += [(s, ANNOTATIONS) for s in studies]
    version = dataset_version(StoreLocation.from_url(sel.store), keys)
    return f"{version}|{sel.to_text()}"


@dataclass(frozen=True)
class CheckpointEvaluation:
    """Everything one checkpoint's evaluation produced.

    Attributes:
        values: the flat metric dict (:mod:`breastflow.metrics.names` keys, ``roi_*`` included).
        checkpoint: the ``state.pt`` evaluated; epoch: its epoch; model, run: its family and run.
        dataset_version: the data the checkpoint was trained on.
        synthetic: the synthetic set written (``synthetic/<name>``).
        seconds: ``"load"``, ``"generate"``, ``"read"``, ``"metrics"``, ``"roi"`` -> wall seconds.
        notes: what the evaluation decided on the user's behalf.
    """

    values: dict[str, float]
    checkpoint: str
    epoch: int
    model: str
    run: str
    dataset_version: str
    synthetic: str
    seconds: dict[str, float] = field(default_factory=dict)
    notes: tuple[str, ...] = ()


def _split_of(sel: StoreSelection):
    from breastflow.generate.config import GenerateSplit

    if sel.splits is None or len(sel.splits) != 1:
        return GenerateSplit.ALL
    return GenerateSplit(sel.splits[0].value)


def evaluate_checkpoint_details(checkpoint_uri: str, selection: str | StoreSelection, config: EvaluationConfig, *,
                                expect_dataset_version: str | None = None, roi: bool = True,
                                feature_cache: FeatureCache | None = None,
                                dataset_key: str | None = None, batch: int = 8) -> CheckpointEvaluation:
    """:func:`evaluate_checkpoint` with timings, provenance and notes (see the module docstring).

    Args:
        dataset_key: the real set's cache key (:func:`real_set_key`, computed here when ``None``
            and a cache is given).
        batch: slices per generator call.
    """
    from breastflow.data.selection_loading import load_selection
    from breastflow.evaluate.sets import evaluate_sets
    from breastflow.generate.run import (
        GenerateError,
        GeneratorSource,
        generate_with_model,
        paired_spec_of,
    )
    from breastflow.train.checkpoint import load_checkpoint

    sel = _as_selection(selection)
    if sel.synthetic is not None:
        raise InputError(f"selection {sel.to_text()} reads a synthetic set; evaluate a checkpoint against real data")
    loc = StoreLocation.from_url(sel.store)
    seconds: dict[str, float] = {}
    t0 = time.perf_counter()
    model, meta = load_checkpoint(checkpoint_uri, expect_dataset_version=expect_dataset_version,
                                  device=config.device or "cpu")
    spec = paired_spec_of(meta.train_run, meta.uri, meta.model)
    if sel.series not in spec.targets:
        raise GenerateError(f"checkpoint {meta.uri} generates {list(spec.targets)}, not the selected series "
                            f"{sel.series!r}; select one of those (e.g. series={spec.targets[0]})")
    run = str(meta.train_run.get("run", "run"))
    name = eval_set_name(meta.model, run, meta.epoch)
    checkpoint = meta.uri[len(loc.url) + 1:] if meta.uri.startswith(loc.url + "/") else meta.uri
    source = GeneratorSource(checkpoint=checkpoint, model=meta.model, run=run, epoch=meta.epoch, step=meta.step,
                             dataset_version=meta.dataset_version)
    seconds["load"] = time.perf_counter() - t0
    t0 = time.perf_counter()
    generate_with_model(model, spec, loc, _split_of(sel), name, source, batch)
    seconds["generate"] = time.perf_counter() - t0
    t0 = time.perf_counter()
    real = load_selection(sel, "real")
    fake = load_selection(sel.model_copy(update={"synthetic": name}), "fake")
    if feature_cache is not None and dataset_key is None:
        dataset_key = real_set_key(sel, real)
    seconds["read"] = time.perf_counter() - t0
    t0 = time.perf_counter()
    run_config = config.model_copy(update={"paired": True, "by": () if config.by is None else config.by})
    result = evaluate_sets(real, fake, run_config, feature_cache=feature_cache, dataset_key=dataset_key)
    values = dict(result.values)
    seconds["metrics"] = time.perf_counter() - t0
    notes = list(result.notes)
    if roi:
        t0 = time.perf_counter()
        from breastflow.evaluate.pairing import pair_sets

        roi_vals, roi_note = roi_values(real, pair_sets(real, fake, []), loc, values.get("data_range"), config)
        values.update(roi_vals)
        if roi_note:
            notes.append(roi_note)
        seconds["roi"] = time.perf_counter() - t0
    return CheckpointEvaluation(values=values, checkpoint=meta.uri, epoch=meta.epoch, model=meta.model, run=run,
                                dataset_version=meta.dataset_version, synthetic=name, seconds=seconds,
                                notes=tuple(notes))


def evaluate_checkpoint(checkpoint_uri: str, selection: str | StoreSelection, config: EvaluationConfig, *,
                        expect_dataset_version: str | None = None, roi: bool = True,
                        feature_cache: FeatureCache | None = None) -> dict[str, float]:
    """Generate ``selection``'s split from one checkpoint and return the flat metric dict.

    Args:
        checkpoint_uri: a checkpoint folder or its ``state.pt`` (local or ``s3://``).
        selection: the *real* store selection (string or :class:`StoreSelection`), e.g.
            ``store:///s?series=post_1&split=val&slices=lesion&scale=per-case``.
        config: metrics and settings; ``paired`` is forced on (pairs by ``(study, slice)``)
            and ``by=None`` means no fairness breakdown here.
        expect_dataset_version: dataset version the checkpoint must have been trained on.
        roi: add ``roi_mse, roi_mae, roi_psnr, roi_ssim`` over the lesion boxes.
        feature_cache: cache of the real set's features (see :class:`EvaluationContext`).

    Returns:
        Keys spelled as :mod:`breastflow.metrics.names` (``fid_img``, ``ssim``, ``ssim_sd``,
        ``roi_ssim`` ...), plus ``n_real``, ``n_fake``, ``data_range``.

    Raises:
        breastflow.train.checkpoint.CheckpointError: no readable checkpoint (corrupt bytes, missing).
        breastflow.train.checkpoint.CheckpointMismatchError: trained on another dataset version.
        breastflow.generate.run.GenerateError: not an image-to-image checkpoint of the selected series.
        InputError: see :func:`breastflow.evaluate.sets.evaluate_sets`.
    """
    return evaluate_checkpoint_details(checkpoint_uri, selection, config, expect_dataset_version=expect_dataset_version,
                                       roi=roi, feature_cache=feature_cache).values


def _slice_boxes(loc: StoreLocation, real: ImageSet) -> list[list[tuple[int, int, int, int]]]:
    """Per real image, the half-open ``(row0, col0, row1, col1)`` lesion boxes covering its slice."""
    from breastflow.store.annotation_commit import read_annotation_commit

    records: dict[str, list] = {}
    out: list[list[tuple[int, int, int, int]]] = []
    for study, k in zip(real.meta["study"], real.meta["slice"], strict=True):
        if study not in records:
            record = read_annotation_commit(loc, study)
            records[study] = [] if record is None else list(record.boxes)
        boxes = []
        for b in records[study]:
            if b.start_slice is not None and not b.start_slice <= int(k) <= b.end_slice:
                continue
            boxes.append((b.start_row, b.start_column, b.end_row + 1, b.end_column + 1))
        out.append(boxes)
    return out


def roi_values(real: ImageSet, fake: ImageSet, loc: StoreLocation, data_range: float | None,
               config: EvaluationConfig) -> tuple[dict[str, float], str | None]:
    """Lesion-box variants of MSE, MAE, PSNR and SSIM over the pairs ``real[i]``/``fake[i]``.

    Each slice's region is the union of the lesion boxes (committed annotations, inclusive
    boxes made half-open) that cover it; slices without a box (the selection's margin slices)
    are left out. MSE, MAE and PSNR use exactly the box pixels. SSIM averages the SSIM map
    (7x7 windows, :func:`breastflow.metrics.paired.paired_metrics`) over the window centres
    inside the region, so windows reach up to 3 pixels beyond a box and a box smaller than
    the window needs no padding. A box lying entirely within 3 pixels of the image border has
    no valid window centre; its SSIM region is then widened by the window radius (towards the
    image interior), and the note says how many were widened. Images themselves smaller than
    the window give no ``roi_ssim``.

    Args:
        real, fake: paired sets (``fake[i]`` is the counterpart of ``real[i]``) read from the store.
        loc: the store (annotations).
        data_range: R of the evaluation.
        config: device and batch size.

    Returns:
        ``({roi_<metric>: mean, roi_<metric>_sd: sd}, note or None)``; empty without lesion slices.
    """
    from breastflow.metrics.paired import SSIM_RADIUS, SSIM_WIN_SIZE, paired_metrics

    if data_range is None or real.meta is None or "study" not in real.meta:
        return {}, "no lesion-box metrics: the real set has no store metadata or no data range"
    boxes = _slice_boxes(loc, real)
    keep = [i for i, b in enumerate(boxes) if b]
    if not keep:
        return {}, "no lesion-box metrics: no selected slice lies in a lesion box"
    values: dict[str, float] = {}
    per_metric: dict[str, list[np.ndarray]] = {}
    widened = 0
    by_shape: dict[tuple[int, ...], list[int]] = {}
    for i in keep:
        by_shape.setdefault(real.images[i].shape, []).append(i)
    r = SSIM_RADIUS
    for (h, w), index in by_shape.items():
        real_s = np.stack([real.images[i] for i in index])
        fake_s = np.stack([fake.images[i] for i in index])
        masks = np.zeros((len(index), h, w), dtype=bool)
        for j, i in enumerate(index):
            for r0, c0, r1, c1 in boxes[i]:
                masks[j, max(r0, 0):min(r1, h), max(c0, 0):min(c1, w)] = True
        plain = paired_metrics(fake_s, real_s, data_range, metrics=(names.MSE, names.MAE, names.PSNR),
                               regions=masks, device=config.device, batch_size=config.batch_size)
        for m in (names.MSE, names.MAE, names.PSNR):
            per_metric.setdefault(m, []).append(plain.per_case[m])
        if min(h, w) < SSIM_WIN_SIZE:
            continue
        ssim_masks = masks.copy()
        for j in range(len(index)):
            if not ssim_masks[j, r:h - r, r:w - r].any():
                rows, cols = np.nonzero(masks[j])
                ssim_masks[j, max(rows.min() - r, 0):rows.max() + r + 1, max(cols.min() - r, 0):cols.max() + r + 1] = True
                widened += 1
        ssim = paired_metrics(fake_s, real_s, data_range, metrics=(names.SSIM,), regions=ssim_masks,
                              device=config.device, batch_size=config.batch_size)
        per_metric.setdefault(names.SSIM, []).append(ssim.per_case[names.SSIM])
    for metric, parts in per_metric.items():
        v = np.concatenate(parts)
        values[names.ROI_METRICS[metric]] = float(v.mean())
        values[names.sd_name(names.ROI_METRICS[metric])] = float(v.std())
    values["n_roi"] = float(len(keep))
    note = None
    if widened:
        note = f"roi_ssim: {widened} lesion box(es) within {r} px of the border widened by {r} px for the SSIM window"
    return values, note


def warm_feature_cache(real: ImageSet, config: EvaluationConfig, cache: FeatureCache, dataset_key: str) -> list[str]:
    """Extract the real set's features of every Fréchet metric in ``config`` (and of its feature space,
    for ``nn_accuracy``, ``precision_recall``, ``density_coverage``) into ``cache`` (once).

    Uses the same data range, stack, protocol and key as the Fréchet evaluators of
    :func:`breastflow.evaluate.sets.evaluate_sets`, so every later evaluation against this
    real set finds them in the cache. Returns the extractors warmed.
    """
    from breastflow.evaluate.config import PIXELS
    from breastflow.evaluate.data_range import resolve_data_range
    from breastflow.evaluate.evaluators import EvaluationContext
    from breastflow.metrics.cache import content_key
    from breastflow.metrics.features import build_extractor
    from breastflow.metrics.protocols import get_protocol

    metrics = set(config.resolved_metrics())
    extractors = [next(e for e, m in names.FRECHET_METRIC_FOR_EXTRACTOR.items() if m == metric)
                  for metric in dict.fromkeys(names.FRECHET_METRIC_FOR_EXTRACTOR.values()) if metric in metrics]
    if config.feature_space != PIXELS and metrics & set(FEATURE_SPACE_METRICS):
        extractors = list(dict.fromkeys([*extractors, config.feature_space]))
    if not extractors:
        return []
    data_range = resolve_data_range(real, config, True).value
    ctx = EvaluationContext(real=real, fake=real, config=config, data_range=data_range, feature_cache=cache,
                            dataset_key=dataset_key)
    stack = ctx.stacks()[0]
    _, real_key = ctx.real_cache()
    proto = get_protocol(config.protocol)
    for extractor in extractors:
        net = build_extractor(extractor, weights=config.weights.get(extractor), device=config.device)
        key = content_key(dataset=real_key, extractor=net.name, weights=net.weights_id(), protocol=proto,
                          data_range=data_range)
        cache.get_or_compute(key, lambda net=net: net.extract(stack, proto, data_range, config.batch_size))
    return extractors
