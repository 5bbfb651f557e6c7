"""The templates keep to the Content-Security-Policy without a browser to tell.

tests/browser/test_csp.py walks every page in Chromium; these checks name the
template line at fault when a change brings back something the policy refuses.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from classroom.domain.teams import LOOKS
from classroom.resources import STATIC, TEMPLATES
from classroom.web.templating import team_colour_class

TEMPLATE_FILES = sorted(TEMPLATES.rglob("*.html"))
REFUSED = {
    "a style attribute (style-src 'self')": re.compile(r"\sstyle\s*="),
    "a <style> element": re.compile(r"<style[\s>]"),
    "an inline event handler": re.compile(r"\son[a-z]+\s*=\s*\"", re.I),
    "hx-on (needs eval)": re.compile(r"\shx-on[:\-]"),
    "an hx-trigger filter (needs eval)": re.compile(r'hx-trigger="[^"]*\['),
    "hx-vals or hx-vars with js: (needs eval)": re.compile(
        r'hx-va(?:ls|rs)="\s*(?:js|javascript):'
    ),
    "a javascript: URL": re.compile(r"javascript:", re.I),
}
SCRIPT = re.compile(r"<script\b([^>]*)>(.*?)</script>", re.S)


@pytest.mark.parametrize("path", TEMPLATE_FILES, ids=lambda p: str(p.relative_to(TEMPLATES)))
def test_a_template_has_no_inline_style_handler_or_eval(path: Path) -> None:
    text = path.read_text()
    found = [
        f"line {text.count(chr(10), 0, match.start()) + 1}: {what}"
        for what, pattern in REFUSED.items()
        for match in pattern.finditer(text)
    ]
    for attributes, body in SCRIPT.findall(text):
        if body.strip() and 'type="application/json"' not in attributes:
            found.append(f"an inline script: {body.strip()[:60]!r}")
    assert not found, found


def test_htmx_is_told_to_inject_no_style_and_evaluate_nothing() -> None:
    base = (TEMPLATES / "base.html").read_text()
    match = re.search(r"<meta name=\"htmx-config\" content='([^']*)'>", base)
    assert match, "no htmx-config meta in base.html"
    config = json.loads(match.group(1))
    assert config == {"includeIndicatorStyles": False, "allowEval": False, "allowScriptTags": False}


def test_every_team_colour_has_a_class_in_the_stylesheet() -> None:
    css = (STATIC / "app.css").read_text()
    for look in LOOKS:
        name = team_colour_class(look.colour)
        rule = re.search(rf"\.{name} \{{ --team-colour: ([^;]+); \}}", css)
        assert rule and rule.group(1).lower() == look.colour.lower(), look
    assert team_colour_class("red; background: url(x)") == ""
