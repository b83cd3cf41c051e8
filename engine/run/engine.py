"""The run: results folder, profiles one after another, summary; the engine's public face.

``Engine.run`` drives each profile through a ``ProfileRun`` (engine/run/profile_run.py), publishes
events on the bus, and always writes ``summary.json``, also when interrupted or failing.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import gc
import time
from collections.abc import Callable
from time import perf_counter_ns
from typing import Any

from engine.errors import ExitCode, WriteFailed
from engine.events import (
    EventBus,
    NoticeRaised,
    ProfileFinished,
    ProfileStarted,
    QueueChanged,
    RunFinished,
    RunStarted,
)
from engine.http.vocabulary import single_token_words
from engine.metrics.client_health import ClientHealth
from engine.metrics.failures import all_failed_line
from engine.metrics.knee import find_knees
from engine.metrics.sketch import preload as preload_sketch
from engine.metrics.summary import ProfileSummary, RunSummary
from engine.records import RequestRecord
from engine.results.layout import SAMPLES_FILE, new_run_id
from engine.results.writer import ResultsWriter
from engine.run.config import RunConfig, run_meta
from engine.run.controls import QueueControls
from engine.run.ids import RequestIds
from engine.run.loop_lag import LoopLagMonitor
from engine.run.outage import CONNECTION_FAILURES, ServerWatch
from engine.run.profile_run import RunContext
from engine.run.saturation_stop import saturation_stop_for, skip_later_steps
from engine.run.senders import ProfileSender, senders_for
from engine.run.setup import initial_quirks
from engine.run.validity_monitor import ValidityMonitor
from engine.stats import NS
from engine.status import FinalRunStatus, ProfileStatus, RunStatus
from engine.telemetry.gpu import GpuSampler
from engine.telemetry.sampler import Telemetry
from engine.workload.profile import Profile
from engine.workload.queue import ScenarioQueue

GC_YOUNG_THRESHOLD = 10_000
"""Allocations between young-generation collections during a run (Python's default is 700)."""
ServerCheck = Callable[[], tuple[dict[str, Any], str] | None]
"""Returns ``(facts, reason)`` once a server llmtop manages has exited, else ``None``."""


class Engine(QueueControls):
    """Runs a ``RunConfig``'s profiles, publishing events; returns the run summary."""

    def __init__(
        self,
        config: RunConfig,
        bus: EventBus | None = None,
        run_id: str | None = None,
        *,
        server_check: ServerCheck | None = None,
        gpu: GpuSampler | None = None,
    ) -> None:
        """Build the engine complete: ``server_check`` is given for a server llmtop manages
        and returns ``(facts, reason)`` once it has exited; ``gpu`` replaces NVML (tests).
        """
        self.config = config
        self.bus = bus or EventBus()
        self.run_id = run_id or new_run_id()
        self.run_dir = config.results_root / self.run_id
        self.quirks = initial_quirks(config.server_kind, config.features)
        self._origin_ns = perf_counter_ns()
        self._origin_unix_ns = time.time_ns()
        self._ids = RequestIds()
        self._context = RunContext(
            self.run_id,
            self._origin_ns,
            self.bus,
            config.model,
            config.slo,
            config.save_itl,
            self._ids,
            self._request_finished,
            self._measured_start,
            on_failure=self.fail,
            calibrate_prompts=config.calibrate_prompts,
        )
        self._interrupted = False
        self._failure: str | None = None
        self._write_error: WriteFailed | None = None
        self._writer: ResultsWriter | None = None
        self.bus.on_write_failed = self._write_failed
        self.watch = ServerWatch(
            config.url,
            self._origin_ns,
            self.bus,
            sending=lambda: self._current,
            fail=self.fail,
            grace_s=config.outage_grace_s,
        )
        """Tells a dead server from failed requests (engine/run/outage.py)."""
        self.server_info = config.server_process
        """Facts about a server process llmtop manages; copied into the summary."""
        self._senders = senders_for(config, self.run_id, self.quirks, self.bus, self._ids)
        """This process, or the worker processes that send every profile's share."""
        self.telemetry = (
            Telemetry(
                self.bus,
                self._origin_ns,
                self.run_dir / SAMPLES_FILE,
                config.telemetry,
                gpu=gpu or self._senders.gpu_sampler(),
            )
            if config.telemetry is not None
            else None
        )
        """Samples GPUs (with Ray, on the server's node), the host and the server's metrics
        during the run, in this process only."""
        self._server_check = server_check
        self._current: ProfileSender | None = None
        self.validity = ValidityMonitor(
            self.bus,
            self._origin_ns,
            gpu_interval_s=1.0 / config.telemetry.rate_hz if config.telemetry else None,
        )
        """Says when the run's figures are suspect, as it happens (engine/run/validity.py)."""
        self.bus.subscribe(self.validity)
        self._lag = LoopLagMonitor(on_sample=self.validity.add_loop_lag)
        self.queue = ScenarioQueue(config.profiles)
        """The profiles done, running and to come; changed by the control methods below."""
        self._paused = False
        self._ending = False
        self._queue_changed = asyncio.Event()

    # -- control (safe to call from signal handlers on the engine's loop) --

    def interrupt(self) -> None:
        """Stop sending and cancel in-flight requests (recorded as ``cancelled``)."""
        self._interrupted = True
        if self._current is not None:
            self._current.cancel_all()
        self._queue_changed.set()

    @property
    def origin_ns(self) -> int:
        """The run's clock origin: ``perf_counter_ns()`` at the engine's creation."""
        return self._origin_ns

    async def _measured_start(self) -> None:
        if self.telemetry is not None:
            await self.telemetry.open_window()

    def _start_telemetry(self) -> asyncio.Task[None] | None:
        if self.telemetry is None:
            return None
        self.telemetry.start()
        return asyncio.create_task(self.telemetry.run())

    async def _stop_telemetry(self, task: asyncio.Task[None] | None) -> None:
        if task is None or self.telemetry is None:
            return
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
        await self.telemetry.aclose()

    def check_server(self) -> None:
        """Fail the run if the managed server has exited (cheap: a non-blocking waitpid)."""
        if self._server_check is not None and self._failure is None:
            report = self._server_check()
            if report is not None:
                self.server_exited(*report)

    def server_exited(self, facts: dict[str, Any], reason: str) -> None:
        """The managed server exited: keep its facts (exit code, log tail) and fail the run."""
        self.server_info = {**(self.server_info or {}), **facts}
        self.fail(reason)

    def fail(self, reason: str) -> None:
        """End the run as failed (e.g. the server died): stop sending, skip later profiles;
        in-flight requests end on their own and are recorded as they fail. The reason goes
        out as an error notice at once (the screen shows it) and into the summary.
        """
        if self._failure is not None:
            return
        self._failure = reason
        self.bus.publish(NoticeRaised("error", reason))
        self.stop_sending()
        self._queue_changed.set()

    def _request_finished(self, record: RequestRecord) -> None:
        """After every request: a connection failure checks a managed server's process, and
        feeds the streak that holds sending and probes the server (README "When the server
        dies").
        """
        if record.error_kind in CONNECTION_FAILURES:
            self.check_server()
        if self._failure is None and not self._interrupted:
            self.watch.observe(record)

    def _write_failed(self, error: WriteFailed) -> None:
        """A results file could not be written: stop at once, since every later record would be
        lost. In-flight requests are cancelled; their records are still written where the
        requests file itself did not fail (the run's error counts them at the end).
        """
        if self._write_error is not None:
            return
        self._write_error = error
        self.fail(f"{self._write_failure_words()} ({error.path}): run stopping")
        if self._current is not None:
            self._current.cancel_all()

    def _write_failure_words(self) -> str:
        error = self._write_error
        if error is None:
            return ""
        return "results folder full" if error.disk_full else f"cannot write results ({error})"

    # -- the run --

    async def run(self) -> RunSummary:
        """Execute every profile in order; writes ``summary.json`` whatever happens, unless the
        folder cannot be written (then the summary says so, and an error notice too).
        """
        writer = ResultsWriter(
            self.run_dir, run_meta(self.config, self.run_id, self._origin_ns, self._origin_unix_ns)
        )
        self._writer = writer
        self.bus.sinks.insert(0, writer)
        self.bus.publish(
            RunStarted(
                self.run_id,
                str(self.run_dir),
                self.config.url,
                self.config.model,
                self.config.server_kind,
                tuple(p.name for p in self.config.profiles),
            )
        )
        summaries: list[ProfileSummary] = []
        error: str | None = None
        await self._measure_vocabulary()
        preload_sketch()
        # A full garbage collection stalls the loop for tens of milliseconds once many objects
        # exist, and every chunk arriving meanwhile is stamped late. Objects alive at the start
        # are frozen out of collection for the run.
        # Young collections less often, so objects that live one request are freed by refcount
        # rather than promoted and rescanned by the full collections that stall the loop.
        gc.collect()
        gc.freeze()
        thresholds = gc.get_threshold()
        gc.set_threshold(GC_YOUNG_THRESHOLD, *thresholds[1:])
        lag_task = asyncio.create_task(self._lag.run())
        sampling = self._start_telemetry()
        try:
            await self._senders.start()
            await self._run_queue(summaries)
        except Exception as exc:  # noqa: BLE001 - the summary of what finished is still written
            error = f"{type(exc).__name__}: {exc}"
        finally:
            await self._senders.aclose()
            self.queue.skip_pending()
            self.bus.publish(QueueChanged(self.queue.entries))
            self.check_server()
            lag_task.cancel()
            await self.watch.aclose()
            await self._stop_telemetry(sampling)
            gc.set_threshold(*thresholds)
            gc.unfreeze()
        summary = self._summary(summaries, error)
        try:
            writer.finish(
                summary,
                profiles=[e.profile.model_dump() for e in self.queue.entries],
                queue=[{"profile": e.name, "status": str(e.status)} for e in self.queue.entries],
            )
        except WriteFailed as exc:
            self.bus.publish(
                NoticeRaised(
                    "error",
                    f"the summary could not be written ({exc}); the {writer.saved} records in "
                    "requests.jsonl are intact",
                )
            )
            summary = summary.model_copy(update={"notices": list(self.bus.notices)})
        self.bus.publish(RunFinished(summary))
        writer.close()
        return summary

    async def _measure_vocabulary(self) -> None:
        """Ask the server's tokenizer which prompt words are one token each (where it can)."""
        cfg = self.config
        words = await single_token_words(cfg.url, cfg.server_kind, cfg.model, *cfg.credentials())
        if words is not None:
            self._context = dataclasses.replace(self._context, words=words)

    async def _run_queue(self, summaries: list[ProfileSummary]) -> None:
        """Take queued profiles one by one; with ``hold_open``, wait for more at the end."""
        self.bus.publish(QueueChanged(self.queue.entries))
        while not self._stopped():
            if summaries and self.config.pause_between_profiles_s:
                await self._pause(self.config.pause_between_profiles_s)
                if self._stopped():
                    break
            entry = self.queue.start_next()
            if entry is None:
                if not self.config.hold_open:
                    break
                self._queue_changed.clear()
                await self._queue_changed.wait()
                continue
            self.bus.publish(QueueChanged(self.queue.entries))
            summary = await self._run_profile(entry.profile, summaries)
            summaries.append(summary)
            self.queue.finish(entry.entry_id, summary.status, summary.requests, summary.failures)
            self.bus.publish(QueueChanged(self.queue.entries))

    def _stopped(self) -> bool:
        return self._interrupted or self._failure is not None or self._ending

    async def _pause(self, seconds: float) -> None:
        """Wait between profiles; an interrupt, a failure or a queue change cuts it short."""
        self._queue_changed.clear()
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._queue_changed.wait(), seconds)

    def _summary(self, profiles: list[ProfileSummary], error: str | None) -> RunSummary:
        error = error or self._failure
        if self._write_error is not None and self._writer is not None:
            # Counted now, after the cancelled in-flight records were written (where they could).
            saved = self._writer.saved
            error = f"{self._write_failure_words()}: {saved} requests saved, run stopped"
        if error is None and not self._interrupted:
            error = next((f"{p.profile}: {p.error}" for p in profiles if p.error), None)
        status: FinalRunStatus = (
            RunStatus.FAILED
            if error
            else RunStatus.INTERRUPTED
            if self._interrupted
            else RunStatus.COMPLETED
        )
        lag = self._lag.percentiles_ms()
        return RunSummary(
            run_id=self.run_id,
            status=status,
            exit_code=self._exit_code(error),
            started_unix_s=self._origin_unix_ns / NS,
            duration_s=(perf_counter_ns() - self._origin_ns) / NS,
            profiles=profiles,
            client=ClientHealth(
                loop_lag_p50_ms=lag[0],
                loop_lag_p99_ms=lag[1],
                loop_lag_max_ms=lag[2],
                sink_time_s=self.bus.sink_time_s,
                workers=self._senders.health(),
            ),
            notices=list(self.bus.notices),
            error=error,
            server=self.server_info,
            telemetry=self.telemetry.run_figures() if self.telemetry else None,
            outages=list(self.watch.outages),
            knees=find_knees(profiles, self.config.profiles, self.config.slo),
            validity=self.validity.issues(),
        )

    def _skip_later_steps(self, profile: Profile) -> None:
        skipped = skip_later_steps(self.queue, profile)
        if skipped:
            self.bus.publish(
                NoticeRaised(
                    "warning",
                    f"skipped {', '.join(skipped)}: {profile.name} found the server over-saturated",
                )
            )

    def _exit_code(self, error: str | None) -> ExitCode:
        if self._write_error is not None:
            return ExitCode.WRITE_FAILED
        if self._interrupted:
            return ExitCode.INTERRUPTED
        return ExitCode.FAILED if error else ExitCode.OK

    async def _run_profile(self, profile: Profile, done: list[ProfileSummary]) -> ProfileSummary:
        self.bus.publish(ProfileStarted(profile, len(done), len(self.queue.entries)))
        async with self._senders.open(profile, self._context) as run:
            self._current = run
            saturation = saturation_stop_for(profile, self.queue, done, run, self.bus)
            if self._paused:
                run.pause_sending()
            if self.watch.probing:
                run.pause_sending("outage")
            interval = self.config.snapshot_interval_s
            snapshots = asyncio.create_task(run.publish_snapshots(interval))
            try:
                await run.execute()
            finally:
                snapshots.cancel()
                self._current = None
                if saturation is not None:
                    saturation.close()
                    if saturation in self.bus.sinks:  # the bus detaches a sink that raised
                        self.bus.sinks.remove(saturation)
        status = (
            ProfileStatus.INTERRUPTED
            if self._interrupted
            else ProfileStatus.FAILED
            if self._failure
            else ProfileStatus.STOPPED
            if run.stopping
            else ProfileStatus.COMPLETED
        )
        summary = run.aggregate.summarize(run.duration_s(), status)
        update: dict[str, Any] = {"prompt_calibration": run.calibration}
        if saturation is not None and saturation.reason is not None:
            update["saturation_stop"] = saturation.reason
            self._skip_later_steps(profile)
        failed = all_failed_line(summary)
        if failed and status in (ProfileStatus.COMPLETED, ProfileStatus.STOPPED):
            update.update(status=ProfileStatus.FAILED, error=failed)
        summary = summary.model_copy(update=update)
        if self.telemetry is not None:
            figures = await self.telemetry.close_window(summary)
            summary = summary.model_copy(update={"telemetry": figures})
        self.bus.publish(ProfileFinished(summary))
        return summary
