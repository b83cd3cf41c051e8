"""Suites, prompt repetition and normal lengths: the field notes' experiments as data."""

from __future__ import annotations

import asyncio
import json
import time

import pytest

from engine.run.config import RunConfig
from engine.run.engine import Engine
from engine.workload.profile import Length, ProfileError, builtin_names, validate_profile
from engine.workload.prompts import PromptFactory
from engine.workload.suite import builtin_suites, load_suite
from tests.support.fakeserver import FakeServer


def test_builtin_suites_cover_the_field_notes():
    assert {"lab5", "tiny", "huge", "ladder", "context"} <= set(builtin_suites())
    lab5 = load_suite("lab5")
    assert [p.name for p in lab5.expand()] == [
        "short-qa",
        "long-qa",
        "long-generation",
        "stress",
        "mixed-load",
    ]
    assert lab5.pause_between_s == 5
    assert {p.concurrency for p in lab5.expand()} == {5, 3, 1, 10, 4}


@pytest.mark.parametrize(
    ("grid", "reps", "outs"),
    [
        ("tiny", [40, 40, 400, 400], [8, 512, 8, 512]),
        ("huge", [40, 40, 1000, 1000], [1, 512, 1, 512]),
    ],
)
def test_prefill_decode_grids(grid, reps, outs):
    profiles = load_suite(grid).expand()
    assert [p.prompt_rep for p in profiles] == reps
    assert [p.max_tokens.max for p in profiles] == outs


def test_ladder_runs_each_profile_at_each_concurrency():
    profiles = load_suite("ladder").expand()
    assert [p.name for p in profiles] == [f"ladder-step-c{c}" for c in (1, 2, 4, 8, 16, 32, 64)]
    assert [p.concurrency for p in profiles] == [1, 2, 4, 8, 16, 32, 64]
    assert all(p.exact_output for p in profiles)


def test_every_builtin_profile_loads():
    assert len(builtin_names()) >= 18


def test_bad_suite_names_file_and_field(tmp_path):
    path = tmp_path / "mine.toml"
    path.write_text('profiles = ["quick"]\npause_between_s = -1\nshuffle = true\n')
    with pytest.raises(ProfileError) as caught:
        load_suite(str(path))
    message = str(caught.value)
    assert str(path) in message and "pause_between_s" in message
    assert "unknown field; allowed fields are name, description, profiles" in message


def test_prompt_rep_repeats_the_sentence_after_a_random_tag():
    profile = validate_profile(
        {"name": "rep", "concurrency": 1, "requests": 2, "prompt_rep": 3, "max_tokens": 8}, "test"
    )
    factory = PromptFactory(profile)
    first, second = factory.plan(0), factory.plan(1)
    sentence = profile.prompt_sentence
    assert first.text.endswith(" ".join([sentence] * 3))
    assert first.text != second.text  # the tags differ: no shared cached prefix
    assert first.input_tokens is None and first.max_tokens == 8


def test_prompt_rep_and_input_tokens_are_exclusive():
    with pytest.raises(ProfileError, match="not input_tokens and prompt_rep"):
        validate_profile(
            {"name": "x", "concurrency": 1, "requests": 1, "prompt_rep": 3, "input_tokens": 50},
            "test",
        )


def test_normal_lengths_are_seeded_and_bounded():
    profile = validate_profile(
        {
            "name": "n",
            "concurrency": 1,
            "requests": 1,
            "input_tokens": {"mean": 500, "std": 100, "min": 300, "max": 650},
        },
        "test",
    )
    factory = PromptFactory(profile)
    lengths = [factory.plan(i).input_tokens for i in range(400)]
    assert min(lengths) >= 300 and max(lengths) <= 650
    assert 480 < sum(lengths) / len(lengths) < 520
    assert lengths == [PromptFactory(profile).plan(i).input_tokens for i in range(400)]
    assert profile.input_label == "~500±100"


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"mean": 500, "min": 1, "max": 900}, "needs both 'mean' and 'std'"),
        ({"mean": 1000, "std": 10, "min": 1, "max": 900}, "must lie within [min, max]"),
    ],
)
def test_bad_normal_lengths(fields, message):
    with pytest.raises(ValueError, match=message.replace("[", r"\[").replace("]", r"\]")):
        Length.model_validate(fields)


def test_pause_between_profiles_is_kept_out_of_every_window(tmp_path):
    profiles = [
        validate_profile({"name": n, "concurrency": 1, "requests": 2, "max_tokens": 3}, "test")
        for n in ("a", "b")
    ]
    with FakeServer() as server:
        config = RunConfig(
            url=server.url,
            model="fake-model",
            profiles=profiles,
            results_root=tmp_path,
            pause_between_profiles_s=0.6,
        )
        started = time.monotonic()
        summary = asyncio.run(Engine(config).run())
        elapsed = time.monotonic() - started
    assert elapsed >= 0.6
    assert all(p.duration_s < 0.5 for p in summary.profiles)


def test_prompt_factory_learns_the_servers_fixed_overhead():
    profile = validate_profile(
        {"name": "x", "concurrency": 1, "requests": 1, "input_tokens": 100}, "test"
    )
    factory = PromptFactory(profile, words=("alpha", "beta"))
    first = factory.plan(0)
    assert first.words == 100 and set(first.text.split()) <= {"alpha", "beta"}
    factory.learn(first, prompt_tokens=124)  # a 24-token chat template around the words
    assert factory.overhead == 24
    assert factory.plan(1).words == 76
    factory.learn(factory.plan(2), prompt_tokens=999)  # only the first response decides
    assert factory.overhead == 24


@pytest.mark.parametrize(("per_word", "overhead"), [(1.5, 20), (1.0, 31), (2.2, 5)])
def test_calibration_hits_the_requested_length_on_any_tokenizer(tmp_path, per_word, overhead):
    # A server without /tokenize whose tokenizer spends 1.5 tokens per word and 20 on its
    # template: two tiny calibration requests fit both, and prompts land within 2 %.
    from tests.support.fakeserver import Behaviour

    profile = validate_profile(
        {
            "name": "cal",
            "concurrency": 2,
            "requests": 6,
            "input_tokens": [100, 400],
            "max_tokens": 4,
        },
        "test",
    )
    behaviour = Behaviour(prompt_tokens_rule=(per_word, overhead))
    with FakeServer(behaviour) as server:
        config = RunConfig(
            url=server.url,
            model="fake-model",
            profiles=[profile],
            results_root=tmp_path,
            calibrate_prompts=True,
        )
        summary = asyncio.run(Engine(config).run())
    p = summary.profiles[0]
    assert p.prompt_calibration["tokens_per_word"] == pytest.approx(per_word, rel=0.02)
    assert abs(p.prompt_calibration["overhead_tokens"] - overhead) <= 2
    records = [
        json.loads(line)
        for line in (tmp_path / summary.run_id / "requests.jsonl").read_text().splitlines()
    ]
    assert len(records) == 6
    for r in records:
        assert abs(r["prompt_tokens"] - r["requested_input_tokens"]) <= max(
            2, 0.02 * r["requested_input_tokens"]
        ), r
    assert len(behaviour.requests) == 6 + 2  # the two calibration requests are not records
