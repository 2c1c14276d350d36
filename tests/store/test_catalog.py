import pandas as pd
import pytest

from breastflow.store import layout
from breastflow.store.catalog import read_catalog, rebuild_catalog
from breastflow.store.commit import SeriesRecord, read_commit, read_commits, write_commit
from breastflow.store.fs import StoreLocation
from breastflow.store.splits import SplitConfig, split_of


def _record(study, patient, series, phase):
    return SeriesRecord(study=study, patient=patient, series=series, source_series=f"src{study}{series}",
                        modality="MR", vendor="GE", model="X", field_strength_t=3.0, phase_index=phase,
                        phase_offset_s=None if phase is None else 90.0 * phase, shape=(10, 8, 8),
                        dtype="uint16", spacing_mm=(2.0, 0.7, 0.7), transfer_syntax="1.2.840.10008.1.2.1",
                        content_hash="sha256:00", source_fingerprint="f", n_source_files=10,
                        source_bytes=1000, breastflow_version="0.1.0")


RECORDS = [
    _record("sa", "pa", "pre", 0), _record("sa", "pa", "post_2", 2), _record("sa", "pa", "post_1", 1),
    _record("sa", "pa", "t2", None), _record("sb", "pa", "pre", 0), _record("sc", "pc", "pre", 0),
]


@pytest.mark.parametrize("where", ["local", "s3"])
def test_catalog_is_the_projection_of_commit_markers(where, tmp_path, request):
    url = str(tmp_path / "store") if where == "local" else request.getfixturevalue("s3_store_url")
    loc = StoreLocation.from_url(url)
    assert read_catalog(loc).empty
    for record in RECORDS:
        write_commit(loc, record)
    assert read_commit(loc, "sa", "t2") == RECORDS[3]
    assert read_commit(loc, "sa", "nope") is None
    assert len(read_commits(loc)) == len(RECORDS)
    config = SplitConfig(seed=11)
    written = rebuild_catalog(loc, config)
    catalog = read_catalog(loc)
    assert len(catalog) == len(RECORDS)
    assert not catalog.duplicated(["study", "series"]).any()
    sa = catalog[catalog.study == "sa"]
    assert list(sa.phases_present.iloc[0]) == ["pre", "post_1", "post_2"]
    assert set(sa.n_series) == {4}
    # one patient, one split - across studies too
    assert catalog.groupby("patient").split.nunique().max() == 1
    assert catalog.set_index("patient").split.to_dict()["pc"] == split_of("pc", config).value
    pd.testing.assert_frame_equal(catalog.drop(columns="phases_present"),
                                  written.drop(columns="phases_present"), check_dtype=False)


def test_corrupt_marker_is_named(tmp_path):
    loc = StoreLocation.from_url(str(tmp_path))
    path = tmp_path / layout.commit_marker("sa", "pre")
    path.parent.mkdir(parents=True)
    path.write_text("{not json")
    with pytest.raises(ValueError, match="corrupt commit marker .*pre.json"):
        read_commits(loc)
