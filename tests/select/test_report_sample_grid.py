"""Fig 4b's sample grid when an annotated study has no lesion slice (a lesion-free annotation, as the phantom writes).

Regression: the fresh-clone demo crashed picking the middle lesion slice of such a study.
"""

from __future__ import annotations

from report_helpers import report_studies

from breastflow.data.selection import parse_selection
from breastflow.select.report import _sample_grid
from breastflow.store.annotation_commit import AnnotationRecord, write_annotation_commit
from breastflow.store.catalog import read_catalog, rebuild_catalog
from breastflow.store.splits import SplitConfig


def test_grid_skips_an_annotated_study_without_lesion_slices(tmp_path):
    from data_store_builder import PhantomStudy, build_store, patients

    from breastflow.store.splits import Split

    studies = [s for s in report_studies() if not s.study.startswith("va-")]
    extra = patients(Split.VAL, 3)
    studies += [PhantomStudy("va-0", extra[0], shape=(6, 24, 24), box=(2, 3, 8, 13, 9, 14), seed=20),
                PhantomStudy("va-empty", extra[2], shape=(6, 24, 24), box=None, seed=21)]
    loc = build_store(str(tmp_path / "store"), studies)
    # an annotation commit with no lesion at all: the catalog calls the study annotated, it has no lesion slice
    write_annotation_commit(loc, AnnotationRecord(study="va-empty", patient=extra[2], source_format="phantom",
                                                  n_lesions=0, source_fingerprint="ann-empty",
                                                  breastflow_version="test"))
    rebuild_catalog(loc, SplitConfig(seed=0))
    catalog = read_catalog(loc)
    assert bool(catalog.loc[catalog.study == "va-empty", "annotated"].iloc[0])
    selection = parse_selection(f"store://{loc.url}?series=post_1&split=val&slices=lesion&scale=per-case")
    notes: list[str] = []
    path = _sample_grid(loc, selection, {"table": [], "selected": ""}, 4, tmp_path / "grid.png", notes)
    assert path is not None and path.exists() and not notes
