"""Scenario profiles: what load to send, validated from TOML data files.

A profile is one scenario (concurrency or arrival rate, how many requests, prompt and output
lengths). Built-in profiles live in the repository's ``profiles/`` folder, installed as the
package data of ``engine.workload.builtin`` (pyproject maps the folder to that package, so a
wheel and an editable install read the same files); users pass their own by path. Every field
is documented here and in README.md.
"""

from __future__ import annotations

import tomllib
from importlib import resources
from importlib.resources.abc import Traversable
from pathlib import Path
from typing import Any, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    field_validator,
    model_validator,
)

from engine.errors import InputError
from engine.records import Endpoint
from engine.workload.files import read_text
from engine.workload.saturation import SaturationThresholds

PROFILE_DIR: Traversable = resources.files("engine.workload.builtin")
"""The built-in profiles (suites in its ``suites/``), read through ``importlib.resources`` so
an installed llmtop never looks for the source tree."""


class ProfileError(InputError):
    """A profile that cannot be used; the message names the file, the field and what is allowed."""


class Length(BaseModel):
    """A token length: fixed (``min == max``), drawn uniformly from ``[min, max]`` per request,
    or drawn from a normal distribution (``mean``, ``std``) and kept within ``[min, max]``.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    min: int = Field(ge=1)
    """Smallest length, in tokens."""
    max: int = Field(ge=1)
    """Largest length, in tokens (equal to ``min`` for a fixed length)."""
    mean: float | None = Field(default=None, gt=0)
    """Normal distribution: its mean (needs ``std``); draws are rounded and clipped to bounds."""
    std: float | None = Field(default=None, gt=0)
    """Normal distribution: its standard deviation (needs ``mean``)."""

    @model_validator(mode="after")
    def _ordered(self) -> Length:
        if self.max < self.min:
            raise ValueError(f"max ({self.max}) must be >= min ({self.min})")
        if (self.mean is None) != (self.std is None):
            raise ValueError("a normal length needs both 'mean' and 'std'")
        if self.mean is not None and not self.min <= self.mean <= self.max:
            raise ValueError(
                f"mean ({self.mean:g}) must lie within [min, max] ([{self.min}, {self.max}])"
            )
        return self

    @classmethod
    def parse(cls, value: Any) -> Any:
        """Accept ``64``, ``[10, 200]``, ``{min = 10, max = 200}`` or
        ``{mean = 500, std = 100, min = 100, max = 900}``.
        """
        if isinstance(value, int) and not isinstance(value, bool):
            return {"min": value, "max": value}
        if isinstance(value, list | tuple) and len(value) == 2:
            return {"min": value[0], "max": value[1]}
        if isinstance(value, dict):
            return value
        raise ValueError(f"a token length is N, [MIN, MAX] or {{min = N, max = M}}; got {value!r}")

    def describe(self) -> str:
        """``64``, ``10-200`` or ``~500±100``."""
        if self.mean is not None:
            return f"~{self.mean:g}±{self.std:g}"
        return str(self.min) if self.min == self.max else f"{self.min}-{self.max}"


class Profile(BaseModel):
    """One load scenario. Exactly one of ``concurrency`` and ``rate_rps``; at least one of
    ``requests`` and ``duration_s`` (the run stops at whichever comes first).
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    name: str = Field(min_length=1, pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")
    """Identifier used in records and on the command line (letters, digits, ``_ . -``)."""
    description: str = ""
    """One line saying what the scenario is for."""
    endpoint: Endpoint = "chat"
    """``chat`` sends ``/v1/chat/completions`` with messages; ``completions`` sends a prompt."""
    concurrency: int | None = Field(default=None, ge=1, le=100_000)
    """Closed loop: this many requests in flight; each finished one is replaced at once."""
    rate_rps: float | None = Field(default=None, gt=0, le=100_000)
    """Open loop: requests arrive at this rate per second whether or not earlier ones finished."""
    arrival: Literal["constant", "poisson"] = "constant"
    """Open-loop arrival process: evenly spaced, or exponential gaps (Poisson) from ``seed``."""
    max_in_flight: int = Field(default=4096, ge=1, le=100_000)
    """Open loop only: arrivals beyond this many in-flight requests are recorded as failed
    (``cancelled``) rather than queued, so the client never becomes unbounded."""
    requests: int | None = Field(default=None, ge=1, le=10_000_000)
    """Measured requests to send (warm-up not included)."""
    duration_s: float | None = Field(default=None, gt=0, le=7 * 86400)
    """Stop sending after this many seconds of the measured phase; in-flight requests finish."""
    warmup_requests: int = Field(default=0, ge=0, le=100_000)
    """Requests sent first and excluded from every aggregate (they pay model load, caches)."""
    input_tokens: Length = Length(min=64, max=64)
    """Prompt length in tokens: ``64``, ``[10, 200]``, ``{min=, max=}`` or
    ``{mean=, std=, min=, max=}``."""
    prompt_rep: int | None = Field(default=None, ge=1, le=100_000)
    """Instead of ``input_tokens``: the prompt is ``prompt_sentence`` repeated this many times
    (the field notes' prefill/decode study), after a short random per-request tag."""
    prompt_sentence: str = "The quick brown fox jumps over the lazy dog."
    """The sentence ``prompt_rep`` repeats."""
    prompt_file: str | None = None
    """Instead of synthetic prompts: a JSONL file of ``{"prompt": ...}`` or
    ``{"messages": [...]}`` lines, or a ShareGPT ``.json`` file; used in a seeded order."""
    shared_prefix_tokens: int = Field(default=0, ge=0, le=1_000_000)
    """Synthetic prompts start with this many words common to every request (to measure
    prefix caching); 0 = every prompt differs from its first word (caches cannot help)."""
    max_tokens: Length = Length(min=64, max=64)
    """``max_tokens`` per request: fixed or a uniform range."""
    exact_output: bool = False
    """Ask the server to generate exactly ``max_tokens`` (``ignore_eos``, ``min_tokens``) and
    record whether it did."""
    system_prompt: str | None = None
    """Chat only: a system message sent before the prompt."""
    prompt_suffix: str = ""
    """Appended to every prompt, e.g. ``" /no_think"`` to switch off Qwen3 thinking."""
    temperature: float | None = Field(default=0.0, ge=0, le=2)
    """Sampling temperature sent with each request (``None`` leaves the server default)."""
    seed: int = 0
    """Seed for prompt content, lengths and Poisson arrivals: the same seed, the same requests."""
    round_pause_s: float = Field(default=0.0, ge=0, le=3600)
    """Closed loop: send in rounds of ``concurrency`` requests, wait for the whole round, then
    pause this long. Pauses are excluded from the measured duration. 0 = continuous."""
    extra_body: dict[str, Any] = Field(default_factory=dict)
    """Extra JSON fields merged into every request body (``top_p``, ``chat_template_kwargs``)."""
    stop_when_saturated: bool | None = None
    """Stop this step when the server is over-saturated and skip the later steps of its ladder
    (README "When the server falls over"); ``None``: on for ladders and sweeps, off otherwise."""
    saturation: SaturationThresholds = SaturationThresholds()
    """Thresholds of that stop: ``window_s``, ``min_duration_s``, ``min_requests``,
    ``ttft_growth``, ``latency_growth``, ``throughput_gain_pct``, ``error_rate_pct``."""
    goal: Literal["latency", "throughput"] = "latency"
    """What the load is for: ``latency`` (what a user would see; llmtop warns when the server's
    /metrics show requests waiting throughout) or ``throughput`` (a saturating load, where
    queueing is expected)."""

    @field_validator("input_tokens", "max_tokens", mode="before")
    @classmethod
    def _parse_length(cls, value: Any) -> Any:
        return Length.parse(value)

    @model_validator(mode="after")
    def _shape(self) -> Profile:
        if (self.concurrency is None) == (self.rate_rps is None):
            raise ValueError(
                "set exactly one of 'concurrency' (closed loop) and 'rate_rps' (open loop)"
            )
        if self.requests is None and self.duration_s is None:
            raise ValueError("set 'requests', 'duration_s' or both (the run stops at the first)")
        if self.round_pause_s and self.concurrency is None:
            raise ValueError("'round_pause_s' needs closed-loop 'concurrency'")
        sources = [
            name
            for name in ("input_tokens", "prompt_rep", "prompt_file")
            if name in self.model_fields_set and getattr(self, name) is not None
        ]
        if len(sources) > 1:
            raise ValueError(
                f"set one of 'input_tokens', 'prompt_rep' and 'prompt_file', "
                f"not {' and '.join(sources)}"
            )
        if self.system_prompt and self.endpoint != "chat":
            raise ValueError("'system_prompt' needs endpoint = \"chat\"")
        return self

    @property
    def load_label(self) -> str:
        """``c=8`` or ``5.0 rps poisson``, for tables."""
        if self.concurrency is not None:
            return f"c={self.concurrency}"
        return f"{self.rate_rps:g} rps {self.arrival}"

    @property
    def input_label(self) -> str:
        """``64``, ``10-200``, ``~500±100`` or ``rep 40`` (prompt repetitions)."""
        if self.prompt_rep is not None:
            return f"rep {self.prompt_rep}"
        if self.prompt_file is not None:
            return "file"
        return self.input_tokens.describe()

    @property
    def stop_label(self) -> str:
        """``40 req``, ``60 s`` or ``40 req / 60 s``."""
        parts = []
        if self.requests:
            parts.append(f"{self.requests} req")
        if self.duration_s:
            parts.append(f"{self.duration_s:g} s")
        return " / ".join(parts)


def builtin_names(directory: Traversable | None = None) -> list[str]:
    """Names of the TOML files shipped in ``directory`` (by default the built-in profiles)."""
    entries = (directory or PROFILE_DIR).iterdir()
    return sorted(e.name.removesuffix(".toml") for e in entries if e.name.endswith(".toml"))


def read_toml(ref: str, directory: Traversable, kind: str) -> tuple[str, dict[str, Any]]:
    """Resolve a built-in name (a file in ``directory``) or a path, and parse its TOML; the
    file name is the default ``name``. Returns where it came from (for messages) and the data.
    Errors say which ``kind`` of file and what exists.
    """
    path: Traversable = Path(ref)
    if not Path(ref).suffix:
        # A bare name is a built-in one; through importlib.resources, not the source tree.
        path = directory / f"{ref}.toml"
        if not path.is_file():
            raise ProfileError(
                f"unknown {kind} '{ref}': built-in {kind}s are "
                f"{', '.join(builtin_names(directory))}, or give a path to a "
                f".toml file"
            )
    text = read_text(path, f"{kind} file", ProfileError)
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ProfileError(f"{path}: not valid TOML: {exc}") from None
    data.setdefault("name", Path(path.name).stem)
    return str(path), data


def load_profile(ref: str) -> Profile:
    """Load a profile by built-in name or by path to a TOML file."""
    source, data = read_toml(ref, PROFILE_DIR, "profile")
    return validate_profile(data, source=source)


def validate_profile(data: dict[str, Any], source: str) -> Profile:
    """Validate raw fields into a ``Profile``; errors name the source, field and rule."""
    try:
        return Profile.model_validate(data)
    except ValidationError as exc:
        raise ProfileError(f"{source}: {describe_validation_error(exc)}") from None


def _model_at(model: type[BaseModel], path: tuple[int | str, ...]) -> type[BaseModel]:
    """The model that holds the field at ``path`` (``max_tokens`` -> ``Length``)."""
    for name in path:
        field = model.model_fields.get(str(name))
        annotation = field.annotation if field else None
        if isinstance(annotation, type) and issubclass(annotation, BaseModel):
            model = annotation
    return model


def describe_validation_error(exc: ValidationError, model: type[BaseModel] | None = None) -> str:
    """One line per problem: ``field 'concurrency': Input should be greater than or equal to 1
    (got 0)``.
    """
    lines = []
    for err in exc.errors():
        where = ".".join(str(p) for p in err["loc"]) or "profile"
        got = f" (got {err['input']!r})" if err["type"] not in ("value_error", "missing") else ""
        message = err["msg"].removeprefix("Value error, ")
        if err["type"] == "extra_forbidden":
            fields = _model_at(model or Profile, err["loc"][:-1]).model_fields
            message = "unknown field; allowed fields are " + ", ".join(fields)
            got = ""
        lines.append(f"field '{where}': {message}{got}" if where != "profile" else message + got)
    return "; ".join(lines)
