import pytest

from breastflow.store.fs import StoreLocation, atomic_write_bytes, exists, read_bytes, storage_options_from_env


@pytest.mark.parametrize(
    ("url", "env", "expected"),
    [
        ("/tmp/x", {"AWS_ENDPOINT_URL": "http://h:1"}, {}),
        ("s3://b/p", {}, {}),
        ("s3://b/p", {"AWS_ENDPOINT_URL": "http://h:1"}, {"client_kwargs": {"endpoint_url": "http://h:1"}}),
        ("s3://b/p", {"BREASTFLOW_STORAGE_OPTIONS": '{"anon": true}'}, {"anon": True}),
    ],
)
def test_storage_options_from_env(url, env, expected):
    assert storage_options_from_env(url, env) == expected


def test_bad_options_json_is_a_clear_error():
    with pytest.raises(ValueError, match="BREASTFLOW_STORAGE_OPTIONS"):
        storage_options_from_env("s3://b/p", {"BREASTFLOW_STORAGE_OPTIONS": "{nope"})


def test_empty_url_is_refused():
    with pytest.raises(ValueError, match="empty"):
        StoreLocation.from_url("  ")


@pytest.mark.integration
@pytest.mark.parametrize("where", ["local", "s3"])
def test_atomic_write_roundtrip_leaves_no_temporaries(where, tmp_path, request):
    url = str(tmp_path / "store") if where == "local" else request.getfixturevalue("s3_store_url")
    loc = StoreLocation.from_url(url)
    atomic_write_bytes(loc, "catalog/x.bin", b"one")
    atomic_write_bytes(loc, "catalog/x.bin", b"two")
    assert read_bytes(loc, "catalog/x.bin") == b"two"
    assert exists(loc, "catalog/x.bin")
    listing = loc.filesystem().find(loc.fs_path("catalog"))
    assert [p.rsplit("/", 1)[-1] for p in listing] == ["x.bin"]
