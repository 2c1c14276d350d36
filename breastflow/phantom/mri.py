"""Write one phantom bilateral breast DCE-MRI study (Duke-Breast-Cancer-MRI-like).

Study ``i`` of a cohort draws everything from
``np.random.default_rng(np.random.SeedSequence([seed, i]))`` in a fixed order
(identity, protocol, anatomy, lesions, physiology, pixel noise per phase,
T2), so it does not depend on the cohort size, on other studies, or on the
process that writes it. Output (relative to the cohort folder)::

    dicom/<study_id>/<series_number>/<instance:04d>.dcm   one file per slice
    truth/<study_id>_lesion_mask.nii.gz                   labels on the pre grid
"""

from __future__ import annotations

from dataclasses import asdict
from pathlib import Path

import numpy as np

from breastflow.phantom.anatomy import CHUNK_VOXELS
from breastflow.phantom.anatomy_draw import draw_anatomy
from breastflow.phantom.config import PhantomConfig, Profile, TransferSyntax
from breastflow.phantom.dicom_io import make_uid
from breastflow.phantom.geometry import Grid
from breastflow.phantom.kinetics import draw_blood, draw_bpe, draw_muscle
from breastflow.phantom.lesions import draw_lesions
from breastflow.phantom.mr_headers import (
    SeriesInfo,
    SeriesKind,
    dicom_time,
    seconds_of,
    series_template,
)
from breastflow.phantom.mr_render import (
    Physiology,
    bias_field,
    build_dce_model,
    t2_signal,
    to_stored,
    window_of,
)
from breastflow.phantom.phi import FakeIdentity, draw_identity
from breastflow.phantom.protocol import Protocol, draw_protocol
from breastflow.phantom.records import StudyResult
from breastflow.phantom.series_writer import SeriesFileEncoder, set_pixel_module
from breastflow.phantom.truth import lesion_row, write_label_mask
from breastflow.phantom.vendors import ordinal

# Smallest lesion semi-axis in in-plane voxels: on 64-96 matrices (3-6 mm pixels) a
# lesion must span several voxels for a segmentation / GAN demo to learn from it.
MIN_LESION_RADIUS_VOXELS = {Profile.TINY: 2.2, Profile.REALISTIC: 1.5}


def study_id_of(study_index: int) -> str:
    """PHI-free phantom study id, e.g. ``PH0007``."""
    return f"PH{study_index:04d}"


def study_rng(seed: int, study_index: int) -> np.random.Generator:
    """The generator of study ``study_index`` (independent of cohort size)."""
    return np.random.default_rng(np.random.SeedSequence([seed, study_index]))


def write_mri_study(out_dir: Path, study_index: int, config: PhantomConfig, syntax: TransferSyntax) -> StudyResult:
    """Generate and write one MRI study under ``out_dir``.

    Args:
        out_dir: cohort output folder (``dicom/`` and ``truth/`` are created inside).
        study_index: position of the study in the cohort (0-based).
        config: cohort configuration (seed, profile, T2 fraction).
        syntax: transfer syntax of every file of this study.

    Returns:
        The study's cohort row, lesion rows and PHI values.
    """
    rng = study_rng(config.seed, study_index)
    sid = study_id_of(study_index)
    identity = draw_identity(rng, study_index)
    protocol = draw_protocol(rng, config.profile, config.t2_fraction)
    anatomy = draw_anatomy(rng, detail_mm=3.0 if config.profile is Profile.REALISTIC else 7.0)
    protocol = protocol.fitted_to(anatomy.width())
    centre_y = protocol.fov_centre_y(anatomy.anterior_extent())
    grid = protocol.dce_grid(centre_y)
    z_mm = grid.axis_mm(0)
    min_radius = max(MIN_LESION_RADIUS_VOXELS[config.profile] * max(grid.pixel_spacing), 0.8 * grid.slice_spacing)
    lesions = draw_lesions(rng, anatomy, protocol.post_times_min(), (float(z_mm[0]), float(z_mm[-1])), min_radius,
                           t1_scale=config.lesion_t1_scale)
    physiology = Physiology(bpe=draw_bpe(rng), blood=draw_blood(rng), muscle=draw_muscle(rng),
                            bias_jitter=tuple(float(v) for v in rng.uniform(0.7, 1.3, 3)))  # type: ignore[arg-type]

    maps = anatomy.tissue_maps(grid)
    rasters = [(les, r) for les in lesions if (r := les.rasterise(grid)) is not None]
    labels = np.zeros(grid.shape, dtype=np.uint8)
    for k, (_, r) in enumerate(rasters, start=1):
        region = labels[r.box]
        region[(r.occupancy * maps.breast[r.box]) >= 0.5] = k
    model = build_dce_model(anatomy, maps, grid, rasters, physiology, protocol.vendor.fat_residual)
    breast_voxels = maps.breast > 0.5
    del maps
    bias = bias_field(protocol, grid, physiology.bias_jitter)

    writer = _SeriesWriter(out_dir, sid, config.seed, study_index, identity, protocol, syntax,
                           config.multiphase_series)
    times = protocol.post_times_min()
    for phase in range(protocol.n_post + 1):
        t = None if phase == 0 else float(times[phase - 1])
        stored = np.empty(grid.shape, dtype=np.uint16)
        for k0, k1 in _slabs(grid):  # slab-wise: small temporaries, same random stream order
            stored[k0:k1] = to_stored(model.signal(t, k0, k1), protocol, bias, rng, protocol.rescale_slope)
        kind = SeriesKind.PRE if phase == 0 else SeriesKind.POST
        desc = protocol.vendor.pre_description if phase == 0 else protocol.vendor.post_description.format(
            n=phase, ord=ordinal(phase))
        writer.write(kind, phase, desc, grid, stored, protocol.phase_start_s(phase))
    del model

    mask_rel = f"truth/{sid}_lesion_mask.nii.gz"
    write_label_mask(out_dir / mask_rel, labels, grid)
    lesion_rows = [lesion_row(sid, k, les, labels == k, grid) for k, (les, _) in enumerate(rasters, start=1)
                   if (labels == k).any()]

    t2_grid = None
    if protocol.has_t2:
        t2_grid = protocol.t2_grid(centre_y, float(z_mm[-1] - z_mm[0] + grid.slice_spacing))
        t2_maps = anatomy.tissue_maps(t2_grid)
        t2_rasters = [(les, r) for les in lesions if (r := les.rasterise(t2_grid)) is not None]
        signal = t2_signal(anatomy, t2_maps, t2_grid, t2_rasters)
        stored = to_stored(signal, protocol, bias_field(protocol, t2_grid, physiology.bias_jitter), rng,
                           1.0, gamma=1.0)
        writer.write(SeriesKind.T2, 0, protocol.vendor.t2_description, t2_grid, stored,
                     protocol.pre_start_s - 360.0, slope=1.0)

    phases = ["pre"] + [f"post{k}" for k in range(1, protocol.n_post + 1)]
    v = protocol.vendor
    study = {
        "study_id": sid,
        "modality": config.modality.value,
        "vendor": v.key,
        "manufacturer": v.manufacturer,
        "model": protocol.model.name,
        "field_strength": protocol.model.field_strength,
        "study_instance_uid": writer.study_uid,
        "dicom_dir": f"dicom/{sid}",
        "matrix": grid.rows,
        "n_slices": grid.n_slices,
        "pixel_spacing_mm": round(grid.pixel_spacing[0], 6),
        "slice_spacing_mm": round(grid.slice_spacing, 6),
        "slice_thickness_mm": round(grid.slice_thickness, 6),
        "phases_present": ";".join(phases),
        "n_post_phases": protocol.n_post,
        "pre_series_number": v.series_number(1),
        "post_series_numbers": ";".join(str(v.series_number(1 if config.multiphase_series else 1 + k))
                                        for k in range(1, protocol.n_post + 1)),
        "multiphase_series": config.multiphase_series,
        "phase_interval_s": round(protocol.phase_seconds, 3),
        "has_t2": protocol.has_t2,
        "t2_series_number": v.series_number(0) if protocol.has_t2 else "",
        "t2_matrix": t2_grid.rows if t2_grid else "",
        "n_lesions": len(lesion_rows),
        "lesion_classes": ";".join(str(r["class"]) for r in lesion_rows),
        "breast_density": anatomy.density,
        "bpe_level": physiology.bpe.amplitude,
        "bits_stored": v.bits_stored,
        "rescale_slope": protocol.rescale_slope,
        "transfer_syntax": syntax.value,
        "mask_path": mask_rel,
        "breast_voxels": int(breast_voxels.sum()),
        "n_files": writer.n_files,
    }
    phi = dict(asdict(identity))
    phi.update(StationName=protocol.station_name, DeviceSerialNumber=protocol.device_serial,
               AcquisitionDate=identity.StudyDate, SeriesDate=identity.StudyDate,
               ContentDate=identity.StudyDate, SeriesTimes=writer.series_times)
    return StudyResult(
        study=study,
        lesions=lesion_rows,
        phi_values=sorted({*identity.phi_values(), protocol.station_name, protocol.device_serial}),
        n_files=writer.n_files,
        phi=phi,
    )


def _slabs(grid: Grid) -> list[tuple[int, int]]:
    step = max(1, CHUNK_VOXELS // (grid.rows * grid.cols))
    return [(k0, min(grid.n_slices, k0 + step)) for k0 in range(0, grid.n_slices, step)]


#: SeriesDescription of a multi-phase DCE series (all phases in one series), by vendor key.
MULTIPHASE_DESCRIPTIONS = {"ge": "Ax Vibrant MultiPhase", "siemens": "t1_fl3d_tra_dynVIEWS_spair",
                           "philips": "dyn eTHRIVE SPAIR"}


class _SeriesWriter:
    """Writes the series of one study, keeping the shared UIDs and counts.

    With ``multiphase`` every DCE phase goes into the pre's series (number,
    UID, folder, description and SeriesTime of the whole dynamic run), its
    instances numbered on after the previous phase's; each phase keeps its own
    TemporalPositionIdentifier, TriggerTime, AcquisitionTime and ContentTime.
    """

    def __init__(self, out_dir: Path, sid: str, seed: int, index: int, identity: FakeIdentity,
                 protocol: Protocol, syntax: TransferSyntax, multiphase: bool = False) -> None:
        self.multiphase = multiphase
        self.out_dir, self.sid, self.seed, self.index = out_dir, sid, seed, index
        self.identity, self.protocol, self.syntax = identity, protocol, syntax
        self.study_uid = make_uid(seed, index, "study")
        self.frame_uid = make_uid(seed, index, "frame-of-reference")
        self.n_files = 0
        self.series_times: list[str] = []
        self.element_cache: dict[tuple[int, str, str, tuple[str, ...]], bytes] = {}

    def write(self, kind: SeriesKind, phase: int, description: str, grid: Grid, stored: np.ndarray,
              start_s: float, slope: float | None = None) -> None:
        p = self.protocol
        together = self.multiphase and kind is not SeriesKind.T2
        number = p.vendor.series_number(0 if kind is SeriesKind.T2 else 1 + (0 if together else phase))
        if together:
            description = MULTIPHASE_DESCRIPTIONS.get(p.vendor.key, "dynamic multiphase")
        info = SeriesInfo(kind=kind, phase=phase, series_number=number, description=description,
                          series_uid=make_uid(self.seed, self.index, "series", number), grid=grid,
                          start_s=start_s, study_start_s=seconds_of(self.identity.StudyTime),
                          window=window_of(stored, p.rescale_slope if slope is None else slope))
        template = series_template(self.identity, p, info, self.study_uid, self.frame_uid, p.n_post + 1)
        if together:  # series-level times are those of the dynamic run's start (the pre)
            template.SeriesTime = dicom_time(info.study_start_s + p.phase_start_s(0))
        set_pixel_module(template, grid.rows, grid.cols, p.vendor.bits_stored)
        encoder = SeriesFileEncoder(template, self.syntax, self.element_cache)
        self.series_times.append(str(template.SeriesTime))
        folder = self.out_dir / "dicom" / self.sid / str(number)
        folder.mkdir(parents=True, exist_ok=True)
        n = grid.n_slices
        first = phase * n if together else 0
        for k in range(n):
            instance = first + (n - k if p.vendor.instances_descending_z else k + 1)
            encoder.write(folder / f"{instance:04d}.dcm", make_uid(self.seed, self.index, "sop", number, instance),
                          instance, grid.position(k), stored[k])
        self.n_files += n
