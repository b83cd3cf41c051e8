"""Words that are exactly one token for the server's own tokenizer.

Prompts are built from common English words. Where the server can tokenize (llama.cpp and
vLLM expose ``/tokenize``), llmtop keeps only the words that are a single token with their
leading space, so ``n`` words are ``n`` prompt tokens; the fixed rest (chat template, BOS,
suffix) is learned from the first response (``PromptFactory.learn``).
"""

from __future__ import annotations

import asyncio
from typing import Any

import httpx

from engine.http.auth import auth_headers
from engine.workload.prompts import WORDS

MIN_WORDS = 50
"""Fewer single-token words than this and the default vocabulary is kept."""
PARALLEL = 16


def tokenize_body(kind: str, model: str, text: str) -> dict[str, Any] | None:
    """The /tokenize request body for a server kind, or None when it has no such route."""
    if kind == "llama.cpp":
        return {"content": text, "add_special": False}
    if kind == "vllm":
        return {"model": model, "prompt": text, "add_special_tokens": False}
    return None


async def single_token_words(
    url: str,
    kind: str,
    model: str,
    api_key: str | None = None,
    basic_auth: str | None = None,
) -> tuple[str, ...] | None:
    """The default words that are one token each (with a leading space), or None."""
    if tokenize_body(kind, model, "") is None:
        return None
    headers = auth_headers(api_key, basic_auth)
    gate = asyncio.Semaphore(PARALLEL)
    async with httpx.AsyncClient(base_url=url, headers=headers, timeout=10.0) as http:

        async def count(word: str) -> int | None:
            async with gate:
                try:
                    response = await http.post(
                        "/tokenize", json=tokenize_body(kind, model, f" {word}")
                    )
                    tokens = response.json().get("tokens") if response.status_code == 200 else None
                except (httpx.HTTPError, ValueError, AttributeError):
                    return None
                return len(tokens) if isinstance(tokens, list) else None

        counts = await asyncio.gather(*(count(word) for word in WORDS))
    words = tuple(w for w, n in zip(WORDS, counts, strict=True) if n == 1)
    return words if len(words) >= MIN_WORDS else None
