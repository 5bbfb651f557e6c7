"""Jinja2 templates, rendered with the request's CSRF token and signed-in instructor."""

from __future__ import annotations

from typing import Any

from starlette.requests import Request
from starlette.responses import HTMLResponse
from starlette.templating import Jinja2Templates

from classroom.resources import TEMPLATES

templates = Jinja2Templates(directory=str(TEMPLATES))
templates.env.policies["json.dumps_kwargs"] = {"sort_keys": True, "allow_nan": False}


def render(
    request: Request, name: str, context: dict[str, Any] | None = None, status_code: int = 200
) -> HTMLResponse:
    ctx = {
        "csrf_token": request.state.csrf_token,
        "version": request.app.state.asset_version,  # see classroom/web/assets.py
        **(context or {}),
    }
    return templates.TemplateResponse(request, name, ctx, status_code=status_code)
