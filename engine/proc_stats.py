"""CPU and memory of a local server process tree, sampled off the event loop.

A server llmtop starts is a known process; vLLM and SGLang spawn worker processes, so the
children are counted too. ``sample`` blocks for a few hundred microseconds (it reads /proc):
call it through ``asyncio.to_thread``.
"""

from __future__ import annotations

from typing import Any

import psutil

MIB = 1024 * 1024


class ProcessTreeSampler:
    """Accumulates CPU % (of one core) and resident memory of a process and its children."""

    def __init__(self, pid: int) -> None:
        self._root = psutil.Process(pid)
        self._known: dict[int, psutil.Process] = {}
        self.samples = 0
        self.cpu_pct_sum = 0.0
        self.cpu_pct_peak = 0.0
        self.rss_mib_peak = 0.0

    def sample(self) -> None:
        """Take one sample; a process that vanished meanwhile is skipped, never an error."""
        try:
            processes = [self._root, *self._root.children(recursive=True)]
        except psutil.Error:
            return
        cpu = rss = 0.0
        for process in processes:
            known = self._known.setdefault(process.pid, process)
            try:
                with known.oneshot():
                    # The first cpu_percent() of a process is 0 by definition: it starts the
                    # interval. Later calls cover the time since the previous one.
                    cpu += known.cpu_percent(None)
                    rss += known.memory_info().rss / MIB
            except psutil.Error:
                self._known.pop(process.pid, None)
        self.samples += 1
        self.cpu_pct_sum += cpu
        self.cpu_pct_peak = max(self.cpu_pct_peak, cpu)
        self.rss_mib_peak = max(self.rss_mib_peak, rss)

    def figures(self) -> dict[str, Any]:
        """``cpu_pct_mean``, ``cpu_pct_peak``, ``rss_mib_peak`` and the sample count."""
        useful = max(self.samples - 1, 0)  # the first sample only primes cpu_percent
        return {"cpu_pct_mean": self.cpu_pct_sum / useful if useful else None,
                "cpu_pct_peak": self.cpu_pct_peak if useful else None,
                "rss_mib_peak": self.rss_mib_peak if self.samples else None,
                "resource_samples": self.samples}
