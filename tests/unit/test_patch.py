from __future__ import annotations

import pytest

from airflow_provider_aigw.exceptions import AIGatewayInputError
from airflow_provider_aigw.patch import UNSET, LogPatch


def test_only_given_fields_go_into_the_body_and_none_clears():
    assert LogPatch.of(feedback=-1, metadata={"team": "search", "n": 3, "ok": True}).body() == {
        "feedback": -1,
        "metadata": {"team": "search", "n": 3, "ok": True},
    }
    assert LogPatch.of(score=None).body() == {"score": None}
    assert LogPatch.of(score=50, clear=["feedback", "metadata"]).body() == {
        "feedback": None,
        "score": 50,
        "metadata": None,
    }
    assert LogPatch.of(clear="score").body() == {"score": None}


def test_unset_fields_stay_unset():
    patch = LogPatch.of(feedback=1)
    assert patch.score is UNSET and patch.metadata is UNSET
    assert repr(UNSET) == "UNSET"


def test_metadata_is_copied_so_later_changes_do_not_leak_in():
    metadata = {"team": "search"}
    patch = LogPatch.of(metadata=metadata)
    metadata["team"] = "changed"
    assert patch.body() == {"metadata": {"team": "search"}}
    patch.body()["metadata"]["team"] = "again"
    assert patch.body() == {"metadata": {"team": "search"}}


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({}, "nothing to patch"),
        ({"clear": []}, "nothing to patch"),
        ({"feedback": 2}, "feedback must be a number from -1 to 1"),
        ({"feedback": True}, "feedback"),
        ({"feedback": "1"}, "feedback"),
        ({"feedback": float("nan")}, "feedback"),
        ({"score": 101}, "score must be a number from 0 to 100"),
        ({"score": -0.5}, "score"),
        ({"score": float("nan")}, "score"),
        ({"metadata": {"a": {"nested": 1}}}, r"metadata\['a'\] must be a string"),
        ({"metadata": {"a": [1]}}, "metadata"),
        ({"metadata": "k=v"}, "metadata must be a dict"),
        ({"metadata": {str(i): i for i in range(6)}}, "at most 5 entries"),
        ({"metadata": {"x": float("inf")}}, "finite"),
        ({"metadata": {"": 1}}, "metadata keys must be non-empty strings"),
        ({"clear": ["cost"]}, r"clear must be one of \['feedback', 'metadata', 'score'\]"),
        ({"score": 5, "clear": ["score"]}, r"\['score'\] given both a value and in clear="),
    ],
)
def test_bad_patches_are_refused(kwargs, message):
    with pytest.raises(AIGatewayInputError, match=message):
        LogPatch.of(**kwargs)


def test_none_and_clear_of_the_same_field_agree():
    assert LogPatch.of(feedback=None, clear=["feedback"]).body() == {"feedback": None}


def test_a_patch_hashes_although_metadata_is_a_dict():
    assert hash(LogPatch.of(score=1, metadata={"a": 1})) == hash(LogPatch.of(score=1, metadata={"b": 2}))
    assert LogPatch.of(score=1, metadata={"a": 1}) != LogPatch.of(score=1, metadata={"b": 2})
