"""Synthetic prompts of a requested length.

Each prompt is a seeded sequence of common English words. Common lowercase words are one token
in the tokenizers of every mainstream model family, so ``n`` words is close to ``n`` prompt
tokens (the chat template adds a few more; ``requested_input_tokens`` and the server-reported
``prompt_tokens`` are both recorded, so the difference is visible). Every request draws
different words from its first token on, so the server's prefix cache cannot serve a later
request from an earlier one.
"""

from __future__ import annotations

import random
from dataclasses import dataclass

from engine.workload.profile import Length, Profile
from engine.workload.prompt_files import load_prompts

WORDS = tuple(
    "the of and to in is you that it he was for on are as with his they at be this have from "
    "or one had by word but not what all were we when your can said there use an each which "
    "she do how their if will up other about out many then them these so some her would make "
    "like him into time has look two more write go see number no way could people my than "
    "first water been call who oil its now find long down day did get come made may part "
    "over new sound take only little work know place year live me back give most very after "
    "thing our just name good sentence man think say great where help through much before "
    "line right too mean old any same tell boy follow came want show also around form three "
    "small set put end does another well large must big even such because turn here why ask "
    "went men read need land different home us move try kind hand picture again change off "
    "play spell air away animal house point page letter".split()
)


CALIBRATION_WORDS = (32, 256)
"""Word counts of the two calibration prompts."""
MIN_TOKENS_PER_WORD, MAX_TOKENS_PER_WORD = 0.5, 4.0
"""A fitted ratio outside these is implausible (a server not counting prompts): ignored."""
REP_TAG_WORDS = 4
"""Random words before a ``prompt_rep`` prompt (defeats prefix caching; ~4 tokens)."""


@dataclass(frozen=True)
class PromptPlan:
    """The request content for one request of a profile."""

    text: str
    """The user prompt (suffix included)."""
    input_tokens: int | None
    """The length the prompt was built for, in tokens (``None`` for ``prompt_rep`` prompts,
    whose length in tokens only the server's tokenizer knows)."""
    max_tokens: int
    """``max_tokens`` for this request."""
    words: int = 0
    """Words in the prompt body (what ``PromptFactory.learn`` relates to the server's count)."""
    messages: tuple[dict[str, str], ...] | None = None
    """Chat messages from a prompt file (then ``text`` is their contents joined)."""


class PromptFactory:
    """Builds the i-th request's prompt for a profile; same seed and index, same prompt."""

    def __init__(self, profile: Profile, words: tuple[str, ...] | None = None) -> None:
        self._profile = profile
        self._words = words or WORDS
        self.tokens_per_word = 1.0
        """Prompt tokens per word for the server's tokenizer (1 for single-token words)."""
        self._file = load_prompts(profile.prompt_file) if profile.prompt_file else None
        self._prefix = (
            " ".join(
                random.Random(f"{profile.seed}:prefix").choices(
                    self._words, k=profile.shared_prefix_tokens
                )
            )
            if profile.shared_prefix_tokens
            else ""
        )
        self.overhead: int | None = None
        """Prompt tokens the server adds around the words (chat template, BOS, suffix),
        learned from the first successful response; ``None`` until then."""

    def learn(self, plan: PromptPlan, prompt_tokens: int) -> None:
        """Take the server's prompt count for ``plan``; the first one fixes ``overhead``
        (unless ``calibrate`` already did).
        """
        if self.overhead is None and plan.input_tokens is not None and plan.words:
            self.overhead = max(0, round(prompt_tokens - plan.words * self.tokens_per_word))

    def calibration_plans(self) -> list[PromptPlan]:
        """Two prompts of different word counts whose server-side lengths fix the line
        ``tokens = overhead + tokens_per_word * words`` (sent with max_tokens 1).
        """
        rng = random.Random(f"{self._profile.seed}:calibration")
        return [
            PromptPlan(
                text=" ".join(rng.choices(self._words, k=n)) + self._profile.prompt_suffix,
                input_tokens=None,
                max_tokens=1,
                words=n,
            )
            for n in CALIBRATION_WORDS
        ]

    def calibrate(self, points: list[tuple[int, int]]) -> bool:
        """Fit ``(words, prompt_tokens)`` pairs; False (and nothing changed) if implausible."""
        (w1, p1), (w2, p2) = points
        ratio = (p2 - p1) / (w2 - w1)
        if not MIN_TOKENS_PER_WORD <= ratio <= MAX_TOKENS_PER_WORD:
            return False
        self.tokens_per_word = ratio
        self.overhead = max(0, round(p1 - ratio * w1))
        return True

    def plan(self, index: int) -> PromptPlan:
        """Content for request number ``index`` (0-based, warm-up first)."""
        p = self._profile
        rng = random.Random(f"{p.seed}:{p.name}:{index}")
        n_out = _draw(rng, p.max_tokens)
        if p.prompt_rep is not None:
            # A random tag first, so a prefix cache cannot serve one request from another.
            tag = " ".join(rng.choices(WORDS, k=REP_TAG_WORDS))
            text = f"{tag}. " + " ".join([p.prompt_sentence] * p.prompt_rep)
            return PromptPlan(text=text + p.prompt_suffix, input_tokens=None, max_tokens=n_out)
        if self._file is not None:
            chosen = self._file[rng.randrange(len(self._file))]
            return PromptPlan(
                text=chosen.text + p.prompt_suffix,
                input_tokens=None,
                max_tokens=n_out,
                messages=chosen.messages,
            )
        n_in = _draw(rng, p.input_tokens)
        n_words = max(1, round((n_in - (self.overhead or 0)) / self.tokens_per_word))
        n_shared = min(p.shared_prefix_tokens, n_words)
        own = " ".join(rng.choices(self._words, k=n_words - n_shared))
        shared = " ".join(self._prefix.split()[:n_shared])
        text = " ".join(part for part in (shared, own) if part) + p.prompt_suffix
        return PromptPlan(text=text, input_tokens=n_in, max_tokens=n_out, words=n_words)

    def body(self, plan: PromptPlan, model: str) -> dict[str, object]:
        """The request body fields for ``plan`` (streaming plumbing is the client's)."""
        p = self._profile
        body: dict[str, object] = {"model": model, "max_tokens": plan.max_tokens}
        if p.endpoint == "chat":
            messages = [{"role": "system", "content": p.system_prompt}] if p.system_prompt else []
            if plan.messages is not None:
                turns = [dict(m) for m in plan.messages]
                turns[-1]["content"] += p.prompt_suffix
                body["messages"] = [*messages, *turns]
            else:
                body["messages"] = [*messages, {"role": "user", "content": plan.text}]
        else:
            body["prompt"] = plan.text
        if p.temperature is not None:
            body["temperature"] = p.temperature
        return {**body, **p.extra_body}


def _draw(rng: random.Random, length: Length) -> int:
    if length.mean is not None and length.std is not None:
        return min(length.max, max(length.min, round(rng.gauss(length.mean, length.std))))
    return length.min if length.min == length.max else rng.randint(length.min, length.max)
