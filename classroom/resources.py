"""Where the templates, static files and migrations live.

In a source checkout (or an editable install) they sit at the top of the
repository; a wheel carries them inside the package under ``_assets``.
"""

from __future__ import annotations

from pathlib import Path

_PACKAGE = Path(__file__).resolve().parent


def asset_dir(name: str) -> Path:
    bundled = _PACKAGE / "_assets" / name
    if bundled.is_dir():
        return bundled
    return _PACKAGE.parent / name


TEMPLATES = asset_dir("templates")
STATIC = asset_dir("static")
MIGRATIONS = asset_dir("migrations")
