"""README.md documents every record and profile field with its docstring, so the docs cannot
drift from the code silently. If a test here fails, update the README table row it names."""

import ast
import inspect

import pytest

from engine import records
from engine.workload import profile
from tests.support.paths import ROOT

README = (ROOT / "README.md").read_text()


def field_rows(module: object, class_name: str) -> list[str]:
    """README table rows ``| `name` | `type` | docstring |`` for a pydantic model's fields."""
    body = ast.parse(inspect.getsource(getattr(module, class_name))).body[0].body
    rows = []
    for node, after in zip(body, [*body[1:], None], strict=True):
        if not isinstance(node, ast.AnnAssign):
            continue
        doc = ""
        if isinstance(after, ast.Expr) and isinstance(after.value, ast.Constant):
            doc = " ".join(after.value.value.split())
        kind = ast.unparse(node.annotation).replace("|", "or")
        rows.append(f"| `{node.target.id}` | `{kind}` | {doc.replace('|', 'or')} |")
    return rows


@pytest.mark.parametrize(("module", "name"), [(records, "RequestRecord"), (profile, "Profile")])
def test_readme_documents_every_field_as_the_code_does(module, name):
    missing = [row for row in field_rows(module, name) if row not in README]
    assert missing == []


def test_readme_gives_the_two_setup_commands():
    assert "scripts/llmtop run --no-ui" in README
    assert "scripts/test" in README


def python_block(heading: str) -> str:
    """The first ```python block after ``heading`` in the README."""
    section = README.split(heading, 1)[1]
    return section.split("```python\n", 1)[1].split("```", 1)[0]


def test_the_readmes_python_example_runs_and_compares(fake_server, tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    code = python_block("### From Python")
    exec(compile(code, "README.md", "exec"), {"URL": fake_server.url, "MODEL": "fake-model"})
    ttft, comparison = capsys.readouterr().out.split(" ", 1)
    assert float(ttft) > 0
    assert '"profile":"quick"' in comparison
    assert len(list((tmp_path / "runs").iterdir())) == 2


def test_every_public_name_of_the_engine_resolves_and_textual_stays_unloaded():
    import subprocess
    import sys

    # Only textual is asserted: httpx imports rich for its own command line when rich is
    # installed, so rich in sys.modules says nothing about the engine's imports (those are
    # checked statically by the import-linter contract).
    code = (
        "import sys, engine; [getattr(engine, n) for n in engine.__all__]; "
        "assert set(engine.__all__) == {'__version__', *engine._EXPORTS}, '__all__ drifted'; "
        "assert 'textual' not in sys.modules, 'textual was imported'"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr


def test_readmes_exit_code_table_is_the_exit_code_enum():
    from engine.errors import ExitCode

    table = README.split("### Exit codes", 1)[1].split("\n## ", 1)[0]
    codes = [
        int(line.split("|")[1]) for line in table.splitlines() if line[:3].strip("| ").isdigit()
    ]
    assert codes == [int(code) for code in ExitCode]
