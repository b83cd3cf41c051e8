"""Making prompts the length a profile asks for, against this server's tokenizer.

Before a profile (``--probe``, the default): two tiny requests measure how many prompt tokens
the server counts per word and around the words. During it: every successful request's
``usage.prompt_tokens`` refines the estimate (``PromptFactory.learn``).
"""

from __future__ import annotations

from time import perf_counter_ns
from typing import Any

from engine.http.client import RequestSpec, StreamingClient
from engine.http.exchange import Exchange
from engine.workload.profile import Profile
from engine.workload.prompts import PromptFactory, PromptPlan


async def calibrate(
    factory: PromptFactory, client: StreamingClient, profile: Profile, model: str
) -> dict[str, Any] | None:
    """Two tiny requests (max_tokens 1, not recorded) measure how many prompt tokens the
    server counts per word and around the words, with this profile's template, system
    prompt and suffix, so prompts hit their requested length from the first request.

    Returns what was measured (for the profile's summary), or ``None`` when the server did
    not report prompt tokens.
    """
    points = []
    for plan in factory.calibration_plans():
        exchange = Exchange(perf_counter_ns())
        await client.execute(RequestSpec(profile.endpoint, factory.body(plan, model)), exchange)
        prompt = (exchange.usage or {}).get("prompt_tokens")
        if exchange.error_kind is not None or not isinstance(prompt, int):
            return None
        points.append((plan.words, prompt))
    if not factory.calibrate(points):
        return None
    return {
        "tokens_per_word": factory.tokens_per_word,
        "overhead_tokens": factory.overhead,
        "points": points,
    }


def learn_prompt_length(
    factory: PromptFactory, profile: Profile, plan: PromptPlan, prompt_tokens: int
) -> str | None:
    """Refine the estimate from a finished request; a warning the first time the server's own
    prompt tokens turn out to exceed the shortest prompt the profile asks for.
    """
    known = factory.overhead is not None
    factory.learn(plan, prompt_tokens)
    overhead = factory.overhead
    shortest = profile.input_tokens.min
    if known or overhead is None or profile.prompt_rep is not None or shortest > overhead:
        return None
    return (
        f"profile '{profile.name}': the server adds {overhead} prompt tokens of its own (chat "
        f"template, BOS, suffix), so prompts shorter than {overhead + 1} tokens cannot be "
        f"made; input_tokens starts at {shortest}"
    )
