"""Client health per worker: the saturation rule, the summary's figures, the console's lines."""

from __future__ import annotations

from array import array

from engine.metrics.client_health import WorkerHealth, is_saturated
from engine.run.workers.messages import Health
from engine.run.workers.state import WorkerState
from tui.console.reporter import worker_lines


class _Link:
    worker, host, pid, kind = 3, "gpu-box", 4242, "process"


def test_saturated_by_cpu_loop_lag_or_schedule_lag():
    assert not is_saturated(None, None, None)
    assert not is_saturated(85.0, 9.0, 9.0)
    assert is_saturated(95.0, 1.0, 0.1)  # no CPU left
    assert is_saturated(20.0, 25.0, 0.1)  # timestamps late
    assert is_saturated(20.0, 1.0, 12.0)  # sends late


def test_a_workers_health_from_what_it_reported():
    state = WorkerState(_Link(), offset_ns=-1500, error_ns=800, records=5)  # type: ignore[arg-type]
    state.schedule_lag_s = array("d", [0.001] * 99 + [0.05])
    state.latest = Health(40.0, (0.2, 3.0, 9.0))
    health = state.health()
    assert (health.worker, health.host, health.pid, health.requests) == (3, "gpu-box", 4242, 5)
    assert health.cpu_pct == 40.0 and health.loop_lag_p99_ms == 3.0
    assert 1.0 < health.schedule_lag_p99_ms < 50.0
    assert health.saturated == (health.schedule_lag_p99_ms > 10)
    state.life = Health(97.0, (0.3, 4.0, 11.0))  # its whole life wins over the last share
    state.lost = "killed by SIGKILL (9)"
    health = state.health()
    assert health.cpu_pct == 97.0 and health.saturated and health.lost == "killed by SIGKILL (9)"


def test_console_lines_name_each_worker_and_mark_trouble():
    ok = WorkerHealth(
        worker=0,
        host="a",
        pid=1,
        cpu_pct=30.0,
        loop_lag_p50_ms=0.1,
        loop_lag_p99_ms=2.0,
        loop_lag_max_ms=5.0,
        schedule_lag_p99_ms=0.3,
        requests=120,
        clock_offset_ns=0,
        clock_error_ns=900,
        saturated=False,
    )
    bad = ok.model_copy(
        update={"worker": 1, "node": "abcdef0123456789", "saturated": True, "lost": "exited"}
    )
    first, second = worker_lines([ok, bad])
    assert first == (
        "worker 0 (a, pid 1): CPU 30 %, loop lag p99 2.0 ms, schedule lag p99 0.3 ms, "
        "120 requests, clock +0±1 us"
    )
    assert second.startswith("worker 1 (a node abcdef01, pid 1)")
    assert second.endswith("[yellow]saturated[/] [red]lost: exited[/]")
