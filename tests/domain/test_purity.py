"""The domain core is pure: it imports no I/O, clock, framework or shell code."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import classroom.domain

DOMAIN = Path(classroom.domain.__file__).parent

# Standard-library modules with no I/O or clock, and pure parsers for the formats.
ALLOWED = {
    "__future__",
    "abc",
    "bisect",
    "collections",
    "dataclasses",
    "decimal",
    "difflib",
    "enum",
    "fractions",
    "functools",
    "heapq",
    "itertools",
    "json",
    "math",
    "operator",
    "re",
    "string",
    "textwrap",
    "types",
    "typing",
    "unicodedata",
    "xml",
    "yaml",
    "defusedxml",
}


def imports_of(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(), filename=str(path))
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names.add(node.module)
        elif isinstance(node, ast.ImportFrom) and node.level > 0:
            names.add("classroom.domain")  # relative imports stay inside the package
    return names


def test_domain_modules_import_only_the_domain_and_pure_standard_modules() -> None:
    offenders = []
    for path in sorted(DOMAIN.rglob("*.py")):
        for name in imports_of(path):
            top = name.split(".")[0]
            inside = name == "classroom.domain" or name.startswith("classroom.domain.")
            if not inside and top not in ALLOWED:
                offenders.append(f"{path.relative_to(DOMAIN.parent)} imports {name}")
    assert offenders == []


def test_the_check_itself_catches_a_forbidden_import(tmp_path: Path) -> None:
    module = tmp_path / "bad.py"
    module.write_text("import asyncio\nfrom classroom.web import app\nfrom time import monotonic\n")
    assert imports_of(module) == {"asyncio", "classroom.web", "time"}


def test_importing_the_domain_loads_no_shell_or_io_library() -> None:
    probe = (
        "import sys, classroom.domain, pkgutil, importlib\n"
        "for m in pkgutil.walk_packages(classroom.domain.__path__, 'classroom.domain.'):\n"
        "    importlib.import_module(m.name)\n"
        "bad = {'asyncio', 'sqlalchemy', 'starlette', 'uvicorn', 'redis', 'websockets',\n"
        "       'jinja2', 'classroom.web', 'classroom.db', 'classroom.live', 'classroom.hub'}\n"
        "print(sorted(bad & set(sys.modules)))\n"
    )
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"
