"""The console's routine pages: the library, a routine's timeline, the builder, uploads."""

from __future__ import annotations

from starlette.routing import BaseRoute

routes: list[BaseRoute] = []
