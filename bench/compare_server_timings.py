"""Compare llmtop's client-side timings with llama.cpp's own per-request ``timings``.

Usage: ``python -m bench.compare_server_timings RESULTS_DIR/RUN_ID``

For every successful request that carries llama.cpp's server-side timings it prints, per
profile, the distribution of:

* decode-rate ratio: client (completion_tokens - 1) / (last_token - first_token) over the
  server's ``predicted_per_second`` (1.00 = perfect agreement);
* TTFT - prompt_ms: what the client sees beyond the server's prompt processing (queueing,
  first-token sampling, HTTP, loopback);
* E2E - (prompt_ms + predicted_ms): client time beyond the server's own total;
* token counts: usage vs timings.predicted_n vs streamed chunks.
"""

from __future__ import annotations

import json
import sys
from collections import defaultdict
from pathlib import Path

from engine.stats import percentile


def rows(run_dir: Path) -> dict[str, list[dict]]:
    by_profile: dict[str, list[dict]] = defaultdict(list)
    for line in (run_dir / "requests.jsonl").read_text().splitlines():
        record = json.loads(line)
        timings = record.get("server_timings") or {}
        if not record["ok"] or record["warmup"] or "predicted_per_second" not in timings:
            continue
        span_s = (record["last_token_ns"] - record["first_token_ns"]) / 1e9
        by_profile[record["profile"]].append(
            {
                "ratio": (record["completion_tokens"] - 1)
                / span_s
                / timings["predicted_per_second"]
                if span_s > 0 and record["completion_tokens"] > 1
                else None,
                "ttft_minus_prompt_ms": record["ttft_s"] * 1000 - timings["prompt_ms"],
                "e2e_minus_server_ms": record["e2e_s"] * 1000
                - timings["prompt_ms"]
                - timings["predicted_ms"],
                "counts_agree": len(set(record["completion_tokens_by_source"].values())) == 1,
            }
        )
    return by_profile


def describe(values: list[float]) -> str:
    ordered = sorted(v for v in values if v is not None)
    if not ordered:
        return "-"
    return (
        f"min {ordered[0]:.3f}  p50 {percentile(ordered, 50):.3f}  "
        f"p90 {percentile(ordered, 90):.3f}  max {ordered[-1]:.3f}"
    )


def main(argv: list[str]) -> int:
    run_dir = Path(argv[0])
    for profile, items in rows(run_dir).items():
        print(f"{profile}: {len(items)} requests with server timings")
        for label, key in (
            ("decode rate client/server", "ratio"),
            ("TTFT - prompt_ms (ms)", "ttft_minus_prompt_ms"),
            ("E2E - server total (ms)", "e2e_minus_server_ms"),
        ):
            print(f"  {label:<28}{describe([i[key] for i in items])}")
        agree = sum(i["counts_agree"] for i in items)
        print(f"  token counts usage=timings=chunks: {agree}/{len(items)}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
