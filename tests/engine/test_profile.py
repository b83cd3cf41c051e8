"""Profile validation: every error names the file, the field and what is allowed."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from engine.workload import profile as profile_module
from engine.workload.profile import (
    Length,
    Profile,
    ProfileError,
    builtin_names,
    load_profile,
    validate_profile,
)

BASE: dict[str, Any] = {"name": "t", "concurrency": 2, "requests": 10}


def error_of(**fields: Any) -> str:
    data = {**BASE, **fields}
    for key in [k for k, v in fields.items() if v is None]:
        del data[key]
    with pytest.raises(ProfileError) as caught:
        validate_profile(data, source="my.toml")
    message = str(caught.value)
    assert message.startswith("my.toml: ")
    return message


# -- valid profiles ---------------------------------------------------------------------------


def test_minimal_closed_loop_profile_and_its_defaults() -> None:
    p = validate_profile(dict(BASE), source="x")
    assert p.endpoint == "chat"
    assert p.rate_rps is None
    assert p.input_tokens == Length(min=64, max=64)
    assert p.max_tokens == Length(min=64, max=64)
    assert p.temperature == 0.0
    assert p.warmup_requests == 0
    assert p.load_label == "c=2"
    assert p.stop_label == "10 req"


def test_open_loop_profile_labels() -> None:
    p = validate_profile(
        {"name": "o", "rate_rps": 2.5, "arrival": "poisson", "requests": 40, "duration_s": 60},
        source="x",
    )
    assert p.concurrency is None
    assert p.load_label == "2.5 rps poisson"
    assert p.stop_label == "40 req / 60 s"


@pytest.mark.parametrize(
    ("value", "expected", "label"),
    [
        (64, Length(min=64, max=64), "64"),
        ([10, 200], Length(min=10, max=200), "10-200"),
        ({"min": 5, "max": 6}, Length(min=5, max=6), "5-6"),
    ],
)
def test_lengths_accept_three_spellings(value: Any, expected: Length, label: str) -> None:
    p = validate_profile({**BASE, "input_tokens": value, "max_tokens": value}, source="x")
    assert p.input_tokens == expected
    assert p.max_tokens == expected
    assert p.input_tokens.describe() == label


def test_profiles_are_frozen() -> None:
    p = validate_profile(dict(BASE), source="x")
    with pytest.raises(ValueError, match="frozen"):
        p.concurrency = 3  # type: ignore[misc]


# -- each error names the field and what is allowed -------------------------------------------


@pytest.mark.parametrize("value", [0, -1])
def test_bad_concurrency(value: int) -> None:
    message = error_of(concurrency=value)
    assert "field 'concurrency'" in message
    assert "greater than or equal to 1" in message
    assert f"(got {value})" in message


def test_concurrency_that_is_not_a_number() -> None:
    message = error_of(concurrency="many")
    assert "field 'concurrency'" in message
    assert "valid integer" in message
    assert "(got 'many')" in message


def test_both_concurrency_and_rate() -> None:
    message = error_of(rate_rps=5.0)
    assert "'concurrency'" in message and "'rate_rps'" in message
    assert "exactly one" in message


def test_neither_concurrency_nor_rate() -> None:
    message = error_of(concurrency=None)
    assert "'concurrency'" in message and "'rate_rps'" in message


def test_rate_must_be_positive() -> None:
    message = error_of(concurrency=None, rate_rps=0)
    assert "field 'rate_rps'" in message
    assert "greater than 0" in message


def test_neither_requests_nor_duration() -> None:
    message = error_of(requests=None)
    assert "'requests'" in message and "'duration_s'" in message


def test_unknown_field_lists_the_allowed_ones() -> None:
    message = error_of(concurency=8)
    assert "field 'concurency': unknown field" in message
    allowed = message.split("allowed fields are ", 1)[1]
    assert allowed.split(", ") == list(Profile.model_fields)
    assert "concurrency" in allowed


def test_unknown_field_inside_a_length() -> None:
    message = error_of(max_tokens={"min": 1, "max": 4, "median": 2})
    assert "field 'max_tokens.median'" in message
    assert "allowed fields are min, max, mean, std" in message


@pytest.mark.parametrize("value", [[200, 10], {"min": 200, "max": 10}])
def test_inverted_range(value: Any) -> None:
    message = error_of(input_tokens=value)
    assert "field 'input_tokens'" in message
    assert "max (10) must be >= min (200)" in message


def test_zero_length() -> None:
    message = error_of(max_tokens=0)
    assert "field 'max_tokens.min'" in message
    assert "greater than or equal to 1" in message


@pytest.mark.parametrize(
    ("field", "value", "allowed"),
    [
        ("endpoint", "embeddings", "'chat' or 'completions'"),
        ("arrival", "burst", "'constant' or 'poisson'"),
    ],
)
def test_choice_fields_list_their_values(field: str, value: str, allowed: str) -> None:
    extra = {"concurrency": None, "rate_rps": 1.0} if field == "arrival" else {}
    message = error_of(**{field: value}, **extra)
    assert f"field '{field}'" in message
    assert allowed in message
    assert f"(got '{value}')" in message


def test_bad_name_shows_the_allowed_pattern() -> None:
    message = error_of(name="two words")
    assert "field 'name'" in message
    assert "A-Za-z0-9" in message


def test_round_pause_needs_closed_loop() -> None:
    message = error_of(concurrency=None, rate_rps=1.0, round_pause_s=2)
    assert "'round_pause_s'" in message and "'concurrency'" in message


def test_system_prompt_needs_chat() -> None:
    message = error_of(endpoint="completions", system_prompt="be brief")
    assert "'system_prompt'" in message and '"chat"' in message


def test_several_problems_are_all_reported() -> None:
    message = error_of(concurrency=0, max_tokens=[9, 1], colour="red")
    assert "field 'concurrency'" in message
    assert "field 'max_tokens'" in message
    assert "field 'colour'" in message


# -- loading files --------------------------------------------------------------------------------


def test_load_by_path_names_the_profile_after_the_file(tmp_path: Path) -> None:
    path = tmp_path / "my-scenario.toml"
    path.write_text(
        'description = "mine"\nrate_rps = 3\nduration_s = 30\n'
        "input_tokens = [10, 20]\n[extra_body]\ntop_p = 0.9\n"
    )
    p = load_profile(str(path))
    assert p.name == "my-scenario"
    assert p.description == "mine"
    assert p.rate_rps == 3
    assert p.input_tokens == Length(min=10, max=20)
    assert p.extra_body == {"top_p": 0.9}


def test_a_name_in_the_file_wins(tmp_path: Path) -> None:
    path = tmp_path / "file.toml"
    path.write_text('name = "inside"\nconcurrency = 1\nrequests = 1\n')
    assert load_profile(str(path)).name == "inside"


def test_errors_in_a_file_name_the_file(tmp_path: Path) -> None:
    path = tmp_path / "bad.toml"
    path.write_text("concurrency = 0\nrequests = 1\n")
    with pytest.raises(ProfileError) as caught:
        load_profile(str(path))
    assert str(caught.value).startswith(f"{path}: field 'concurrency'")


def test_invalid_toml(tmp_path: Path) -> None:
    path = tmp_path / "broken.toml"
    path.write_text("concurrency = = 2\n")
    with pytest.raises(ProfileError, match="not valid TOML") as caught:
        load_profile(str(path))
    assert str(path) in str(caught.value)


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(ProfileError, match="no such profile file"):
        load_profile(str(tmp_path / "absent.toml"))


def test_unknown_builtin_name_lists_what_exists(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    for name in ("beta", "alpha"):
        (tmp_path / f"{name}.toml").write_text("concurrency = 1\nrequests = 1\n")
    monkeypatch.setattr(profile_module, "PROFILE_DIR", tmp_path)
    assert builtin_names() == ["alpha", "beta"]
    with pytest.raises(ProfileError) as caught:
        load_profile("gamma")
    message = str(caught.value)
    assert "unknown profile 'gamma'" in message
    assert "alpha, beta" in message
    assert ".toml" in message
    assert load_profile("alpha").name == "alpha"


def test_unknown_builtin_name_lists_the_shipped_profiles() -> None:
    with pytest.raises(ProfileError) as caught:
        load_profile("no-such-profile")
    for name in builtin_names():
        assert name in str(caught.value)


@pytest.mark.parametrize("name", builtin_names())
def test_every_shipped_profile_is_valid(name: str) -> None:
    p = load_profile(name)
    assert p.name == name
    assert p.description


@pytest.mark.parametrize("value", [[1, 2, 3], "lots"])
def test_a_malformed_length_lists_the_accepted_forms(value: Any) -> None:
    message = error_of(input_tokens=value)
    assert "field 'input_tokens'" in message
    assert "N, [MIN, MAX] or {min = N, max = M}" in message
