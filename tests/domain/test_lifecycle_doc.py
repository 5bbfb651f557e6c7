"""docs/class-lifecycle.md is generated from the transition table and kept current."""

from __future__ import annotations

from pathlib import Path

import pytest

from classroom.domain import commands as cmd
from classroom.domain.lifecycle import lifecycle_markdown
from classroom.domain.session import TRANSITIONS, Phase

DOC = Path(__file__).resolve().parents[2] / "docs" / "class-lifecycle.md"


def test_the_lifecycle_doc_matches_the_transition_table() -> None:
    assert DOC.read_text() == lifecycle_markdown(), (
        "docs/class-lifecycle.md is stale: run `python -m classroom.domain.lifecycle"
        " > docs/class-lifecycle.md`"
    )


def test_the_doc_changes_when_the_table_does(monkeypatch: pytest.MonkeyPatch) -> None:
    before = lifecycle_markdown()
    monkeypatch.delitem(TRANSITIONS, (Phase.PAUSED, cmd.Extend))
    assert lifecycle_markdown() != before
