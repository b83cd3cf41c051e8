"""Statuses are StrEnums: on disk and in comparisons they are the same strings as before."""

from __future__ import annotations

import json

import pytest

from engine.metrics.summary import RunSummary
from engine.results.runs import load_run
from engine.results.writer import write_json_atomic
from engine.status import ProfileStatus, RunStatus
from engine.workload.queue import EntryStatus, final_status
from tests.support.run_fixtures import BASE, KILLED, LADDER, RUNS


@pytest.mark.parametrize("name", [LADDER, BASE])
def test_a_recorded_summary_is_written_back_byte_for_byte(tmp_path, name):
    text = (RUNS / name / "summary.json").read_text()
    data = json.loads(text)
    summary = RunSummary.model_validate(data)
    assert summary.status is RunStatus.COMPLETED
    assert {p.status for p in summary.profiles} == {ProfileStatus.COMPLETED}
    write_json_atomic(tmp_path / "summary.json", summary.model_dump())
    # Recorded before summaries had ``knees``, ``outages``, ``validity``, the profiles' failure
    # and saturation fields, the distributions' ``exact`` and the client's ``workers``: the
    # only differences are those keys, at the ends, with their empty (or, for ``exact``,
    # true) values.
    failure_fields = {"top_failure": None, "top_failure_count": 0, "error": None}
    profiles = [{**_exact(p), **failure_fields, "saturation_stop": None} for p in data["profiles"]]
    client = {**data["client"], "workers": []}
    expected = json.dumps(
        {
            **data,
            "profiles": profiles,
            "client": client,
            "knees": [],
            "outages": [],
            "validity": [],
        },
        indent=2,
    )
    expected += "\n"
    assert (tmp_path / "summary.json").read_text() == expected


def _exact(profile: dict) -> dict:
    """The profile with ``exact: true`` added to each of its distributions."""
    shape = {"count", "mean", "p50", "p90", "p95", "p99", "max"}
    return {
        k: {**v, "exact": True} if isinstance(v, dict) and set(v) == shape else v
        for k, v in profile.items()
    }


def test_statuses_read_back_are_members_and_equal_their_strings():
    killed = load_run(RUNS / KILLED)
    assert killed.status is RunStatus.INCOMPLETE and killed.status == "incomplete"
    assert killed.profiles[0].status is ProfileStatus.INCOMPLETE
    assert json.loads(killed.model_dump_json())["status"] == "incomplete"
    assert {"incomplete": "yellow"}[killed.status] == "yellow"
    assert f"{killed.status}" == str(killed.status) == "incomplete"


@pytest.mark.parametrize(
    ("status", "entry"),
    [
        (ProfileStatus.COMPLETED, EntryStatus.DONE),
        (ProfileStatus.INCOMPLETE, EntryStatus.DONE),
        (ProfileStatus.STOPPED, EntryStatus.STOPPED),
        (ProfileStatus.INTERRUPTED, EntryStatus.STOPPED),
        (ProfileStatus.FAILED, EntryStatus.FAILED),
        ("stopped", EntryStatus.STOPPED),
    ],
)
def test_every_profile_status_has_an_entry_status(status, entry):
    assert final_status(status) is entry
