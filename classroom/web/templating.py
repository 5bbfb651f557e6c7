"""Jinja2 templates, rendered with the request's CSRF token and signed-in instructor."""

from __future__ import annotations

import re
from typing import Any

from starlette.requests import Request
from starlette.responses import HTMLResponse
from starlette.templating import Jinja2Templates

from classroom.domain.words import counted
from classroom.resources import TEMPLATES

templates = Jinja2Templates(directory=str(TEMPLATES))
templates.env.policies["json.dumps_kwargs"] = {"sort_keys": True, "allow_nan": False}

_HEX_COLOUR = re.compile(r"#[0-9a-fA-F]{6}")


def team_colour_class(colour: str) -> str:
    """The CSS class that paints a team badge ``colour``: ``team-colour-0072b2``.

    The Content-Security-Policy allows no ``style`` attributes, so static/app.css
    has a class for every colour of the team palette (classroom/domain/teams.py).
    """
    if not _HEX_COLOUR.fullmatch(colour):
        return ""
    return f"team-colour-{colour[1:].lower()}"


templates.env.filters["team_colour"] = team_colour_class
templates.env.filters["counted"] = counted


def render(
    request: Request, name: str, context: dict[str, Any] | None = None, status_code: int = 200
) -> HTMLResponse:
    ctx = {
        "csrf_token": request.state.csrf_token,
        "version": request.app.state.asset_version,  # see classroom/web/assets.py
        **(context or {}),
    }
    return templates.TemplateResponse(request, name, ctx, status_code=status_code)
