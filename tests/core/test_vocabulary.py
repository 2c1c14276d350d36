"""The shared vocabulary: one class per concept, stored values unchanged, old import paths still work."""

import pytest

from breastflow import vocabulary
from breastflow.data.selection import parse_selection
from breastflow.data.slice_choice import SliceChoice
from breastflow.dicom import classify
from breastflow.metrics import kinetics
from breastflow.phantom import config, mammo_views


@pytest.mark.parametrize(("enum", "values"), [
    (vocabulary.Laterality, {"LEFT": "L", "RIGHT": "R"}),
    (vocabulary.ViewPosition, {"CC": "CC", "MLO": "MLO"}),
    (vocabulary.LesionClass, {"BENIGN": "benign", "MALIGNANT": "malignant"}),
    (vocabulary.CurveType, {"PERSISTENT": "persistent", "PLATEAU": "plateau", "WASHOUT": "washout"}),
    (SliceChoice, {"ALL": "all", "LESION": "lesion", "EVERY": "every"}),
])
def test_stored_values_do_not_change(enum, values):
    assert {m.name: m.value for m in enum} == values


@pytest.mark.parametrize(("old", "new"), [
    (classify.Laterality, vocabulary.Laterality),
    (classify.MammoView, vocabulary.ViewPosition),
    (mammo_views.Laterality, vocabulary.Laterality),
    (mammo_views.ViewPosition, vocabulary.ViewPosition),
    (config.LesionClass, vocabulary.LesionClass),
    (config.CurveType, vocabulary.CurveType),
    (kinetics.CurveType, vocabulary.CurveType),
])
def test_old_import_paths_name_the_one_class(old, new):
    assert old is new


@pytest.mark.parametrize("word", ["all", "lesion", "every"])
def test_selection_slices_words_are_slice_choices(word):
    assert parse_selection(f"store:///s?series=pre&slices={word}").slices is SliceChoice(word)
