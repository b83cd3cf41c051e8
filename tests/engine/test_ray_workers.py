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


def test_the_servers_node_is_found_by_address_or_name():
    from engine.run.workers.ray_link import server_node

    nodes = [
        {"NodeID": "driver", "NodeManagerAddress": "10.0.0.1", "NodeManagerHostname": "head"},
        {"NodeID": "gpu", "NodeManagerAddress": "10.0.0.7", "NodeManagerHostname": "gpu7"},
        {"NodeID": "dead", "NodeManagerAddress": "10.0.0.9", "Alive": False},
    ]
    assert server_node("http://10.0.0.7:8000", nodes, "driver") == "gpu"
    assert server_node("http://10.0.0.1:8000", nodes, "driver") is None  # the driver samples
    assert server_node("http://127.0.0.1:8000", nodes, "driver") is None  # loopback: here
    assert server_node("http://10.0.0.9:8000", nodes, "driver") is None  # not in the cluster
    assert server_node("http://10.0.0.99:8000", nodes, "driver") is None


def test_gpus_are_read_on_the_servers_node(two_nodes):
    from engine.run.workers.ray_link import RemoteGpuSampler

    driver = ray.get_runtime_context().get_node_id()
    other = next(n["NodeID"] for n in ray.nodes() if n["Alive"] and n["NodeID"] != driver)
    sampler = RemoteGpuSampler(other)
    try:
        notice = sampler.open()
        # No NVIDIA driver on these machines: the node's NVML says so, and where.
        assert notice is not None and notice.startswith(f"on the server's node {other[:8]}: ")
        assert sampler.sample() == () and not sampler.available
    finally:
        sampler.close()
