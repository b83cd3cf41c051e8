"""Suites: ordered lists of profiles run back to back as one run with one results folder.

A suite is a TOML file under ``profiles/suites/`` (built-in, installed with the profiles) or given
by path::

    description = "lab set A: the five scenarios"
    profiles = ["short-qa", "long-qa", "long-generation", "stress", "mixed-load"]
    pause_between_s = 5

``concurrency_ladder = [1, 2, 4, ...]`` runs every listed profile once per concurrency (named
``PROFILE-cN``), lowest first: the shape for finding where throughput stops growing.
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from engine.workload.profile import (
    PROFILE_DIR,
    Profile,
    ProfileError,
    builtin_names,
    describe_validation_error,
    load_profile,
    read_toml,
    validate_profile,
)

SUITE_DIR = PROFILE_DIR / "suites"


class Suite(BaseModel):
    """A named, ordered list of profiles."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    name: str
    """Identifier (defaults to the file name)."""
    description: str = ""
    """One line saying what the suite is for."""
    profiles: list[str] = Field(min_length=1)
    """Built-in profile names or paths to profile files, run in this order."""
    pause_between_s: float = Field(default=0.0, ge=0, le=3600)
    """Pause between two profiles (the field notes paused 5 s between scenarios)."""
    concurrency_ladder: list[int] | None = Field(default=None, min_length=1)
    """Run each profile once per concurrency in this list (closed loop), in order."""

    def expand(self) -> list[Profile]:
        """The profiles this suite runs, ladder applied."""
        profiles = [load_profile(ref) for ref in self.profiles]
        if not self.concurrency_ladder:
            return profiles
        return [
            validate_profile(
                {
                    **p.model_dump(exclude_unset=True),
                    "name": f"{p.name}-c{c}",
                    "concurrency": c,
                    "rate_rps": None,
                },
                f"suite '{self.name}'",
            )
            for p in profiles
            for c in self.concurrency_ladder
        ]


def builtin_suites() -> list[str]:
    """Names of the suites shipped in ``profiles/suites/``."""
    return builtin_names(SUITE_DIR)


def load_suite(ref: str) -> Suite:
    """Load a suite by built-in name or path; errors name the file, the field and the rule."""
    source, data = read_toml(ref, SUITE_DIR, "suite")
    try:
        return Suite.model_validate(data)
    except ValidationError as exc:
        raise ProfileError(f"{source}: {describe_validation_error(exc, Suite)}") from None
