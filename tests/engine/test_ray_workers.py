"""--ray: the workers as Ray actors on a local two-node cluster (``ray.cluster_utils``), one per
node; against the fake server, and (slow, ``real_server``) against the real llama-server."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.support.builders import make_profile

ray = pytest.importorskip("ray", reason="Ray is the optional llmtop[ray]")


@pytest.fixture(scope="module")
def two_nodes() -> Iterator[object]:
    """A Ray cluster of two nodes on this machine, one CPU each (~10 s to start on 2 cores)."""
    from ray.cluster_utils import Cluster

    cluster = Cluster(initialize_head=True, head_node_args={"num_cpus": 1})
    cluster.add_node(num_cpus=1)
    ray.init(address=cluster.address, log_to_driver=False, configure_logging=False)
    try:
        yield cluster
    finally:
        ray.shutdown()
        cluster.shutdown()


def _check_run(result, workers: int = 2):
    summary = result.summary
    assert summary.status == "completed", summary.error
    health = summary.client.workers
    assert len(health) == workers
    # One actor per node: each holds the one CPU of its node.
    assert len({w.node for w in health}) == workers and all(w.node for w in health)
    assert {r["worker"] for r in result.records} == set(range(workers))
    assert all(r["host"] == health[r["worker"]].host for r in result.records)
    ends = [r["end_ns"] for r in result.records]
    assert ends == sorted(ends)
    ids = [r["request_id"] for r in result.records]
    assert len(set(ids)) == len(ids)
    return summary


def test_ray_actors_send_the_split_load(two_nodes, fake_server, run_engine):
    fake_server.behaviour.ttft_s, fake_server.behaviour.itl_s = 0.01, 0.002
    profile = make_profile(concurrency=4, requests=40, warmup_requests=2)
    result = run_engine(fake_server.url, profile, workers=2, ray_address="auto", limit_s=120)
    summary = _check_run(result)
    assert summary.profiles[0].successes == 40 and len(result.records) == 42
    # Same host as the driver: the offsets come from the wall-clock pairs, to a few us.
    assert all(abs(w.clock_offset_ns) < 1_000_000 for w in summary.client.workers)


@pytest.mark.real_server
def test_ray_actors_against_the_real_server(two_nodes, real_server, run_engine):
    profile = make_profile(concurrency=2, requests=8, max_tokens=16, input_tokens=32)
    result = run_engine(real_server.url, profile, workers=2, ray_address="auto", limit_s=240)
    summary = _check_run(result)
    assert summary.profiles[0].successes == 8
    assert all(r["server_timings"] for r in result.records)
