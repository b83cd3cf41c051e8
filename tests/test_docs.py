"""README.md documents every record and profile field, so the docs cannot drift silently."""

from pathlib import Path

from engine.profile import Profile
from engine.records import RequestRecord

README = (Path(__file__).resolve().parent.parent / "README.md").read_text()


def test_readme_documents_every_record_field():
    missing = [f for f in RequestRecord.model_fields if f"| `{f}` |" not in README]
    assert missing == []


def test_readme_documents_every_profile_field():
    missing = [f for f in Profile.model_fields if f"| `{f}` |" not in README]
    assert missing == []


def test_readme_gives_the_two_setup_commands():
    assert "scripts/llmtop run --no-ui" in README
    assert "scripts/test" in README
