"""Expanding --server-cmd: placeholders, grids, valid layouts, ports."""

import pytest

from engine.servers.matrix import ServerCommandError, expand

VLLM = "vllm serve M --port {port} --tensor-parallel-size {8,4} --pipeline-parallel-size {1,2}"


def test_grid_keeps_only_layouts_that_fill_the_gpus():
    configs = expand([VLLM], None, gpus=8)
    assert [c.label for c in configs] == [
        "tensor-parallel-size=8 pipeline-parallel-size=1",
        "tensor-parallel-size=4 pipeline-parallel-size=2",
    ]
    assert configs[0].argv[:5] == ["vllm", "serve", "M", "--port", configs[0].url.split(":")[-1]]
    assert configs[0].url != configs[1].url  # each {port} is a fresh free port


def test_grid_without_a_gpu_count_runs_every_combination():
    assert len(expand([VLLM], None, gpus=None)) == 4


def test_no_valid_layout_is_an_error():
    with pytest.raises(ServerCommandError, match="must equal the number of GPUs"):
        expand(["vllm serve M --tensor-parallel-size {8,16}"], None, gpus=2)


def test_several_commands_and_ports_from_flags_or_defaults():
    configs = expand(
        ["vllm serve A", "python -m sglang.launch_server --port 30001", "ollama serve"],
        None,
        gpus=None,
    )
    assert [(c.label, c.url) for c in configs] == [
        ("cmd1", "http://127.0.0.1:8000"),
        ("cmd2", "http://127.0.0.1:30001"),
        ("cmd3", "http://127.0.0.1:11434"),
    ]


def test_given_url_wins_and_quoting_is_respected():
    (config,) = expand(["my-server --name 'a b' --port=9000"], "http://127.0.0.1:9999", None)
    assert config.argv == ["my-server", "--name", "a b", "--port=9000"]
    assert config.url == "http://127.0.0.1:9999"


@pytest.mark.parametrize(
    ("command", "message"),
    [
        ("my-server --flag", "cannot tell which port"),
        ("my-server 'unclosed", "cannot parse server command"),
    ],
)
def test_commands_that_cannot_run_say_why(command, message):
    with pytest.raises(ServerCommandError, match=message):
        expand([command], None, None)
