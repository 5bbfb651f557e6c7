"""Every complete routine example in docs/routines.md reads and compiles."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from classroom.domain.compiler import compile_routine
from classroom.domain.formats.text import parse_routine

DOC = Path(__file__).resolve().parents[2] / "docs" / "routines.md"
EXAMPLES = re.findall(r"```(yaml|json)\n(.*?)```", DOC.read_text(encoding="utf-8"), re.DOTALL)
COMPLETE = [(kind, text) for kind, text in EXAMPLES if '"title"' in text or "title:" in text]
FRAGMENTS = [text for kind, text in EXAMPLES if kind == "yaml" and (kind, text) not in COMPLETE]


def test_the_doc_has_complete_examples() -> None:
    assert len(COMPLETE) >= 5


@pytest.mark.parametrize("kind, text", COMPLETE, ids=lambda v: str(v)[:30])
def test_complete_examples_compile(kind: str, text: str) -> None:
    compile_routine(parse_routine(text, "json" if kind == "json" else "yaml"))


@pytest.mark.parametrize("text", [t for t in FRAGMENTS if t.lstrip().startswith("- type:")])
def test_block_examples_compile_inside_a_routine(text: str) -> None:
    indented = "".join(f"  {line}\n" for line in text.splitlines())
    compile_routine(parse_routine(f"title: Example\nblocks:\n{indented}"))
