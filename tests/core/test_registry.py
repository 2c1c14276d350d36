import pytest

from breastflow.registry import Registry, RegistryError


@pytest.fixture
def registry() -> Registry[int]:
    reg: Registry[int] = Registry("test thing")
    reg.add("inception", 1)
    reg.add("radimagenet", 2)
    return reg


def test_lookup_is_case_insensitive(registry):
    assert registry.get("Inception") == 1
    assert "RADIMAGENET" in registry
    assert registry.names() == ["inception", "radimagenet"]


@pytest.mark.parametrize(
    ("name", "fragment"),
    [("inceptoin", "did you mean 'inception'"), ("zzz", "valid: inception, radimagenet")],
)
def test_unknown_name_names_the_nearest(registry, name, fragment):
    with pytest.raises(RegistryError, match=fragment):
        registry.get(name)


def test_duplicate_registration_is_refused(registry):
    with pytest.raises(RegistryError, match="registered twice"):
        registry.register("inception")(3)
