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
