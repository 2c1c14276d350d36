import pytest

from breastflow.store import layout


@pytest.mark.parametrize("name", ["pre", "post_1", "mg_l_cc", "a1b2c3", "t2-x"])
def test_valid_names_build_paths(name):
    assert layout.series_group("st0001", name) == f"studies/st0001/{name}"
    assert layout.commit_marker("st0001", name) == f"commits/st0001/{name}.json"
    assert layout.series_array("st0001", name).endswith(f"/{name}/0")


@pytest.mark.parametrize("name", ["", "../x", "a/b", "Pre", "x" * 65, "_lead", "a b", "a.json"])
def test_unsafe_names_are_refused(name):
    with pytest.raises(ValueError, match="not a valid store name"):
        layout.series_group("st0001", name)


def test_reserved_prefixes_are_distinct_and_used_by_helpers():
    assert len(set(layout.RESERVED_PREFIXES)) == len(layout.RESERVED_PREFIXES)
    assert layout.checkpoint_dir("pix2pixhd", "run1").startswith(layout.CHECKPOINTS + "/")
    assert layout.synthetic_dir("run1").startswith(layout.SYNTHETIC + "/")
    assert layout.eval_cache_dir("abc123").startswith(layout.EVAL + "/")
    assert layout.mask_group("st1", "lesion").startswith(layout.study_group("st1") + "/masks/")
