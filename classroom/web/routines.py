"""The console's routine pages: the library, a routine's timeline, the builder, uploads.

Every page needs the signed-in instructor and every POST checks the CSRF field.
An instructor sees the built-in routines and their own, and changes only their
own: anyone else's routine answers 404, and a built-in one can only be
duplicated. Input is checked in full before anything is stored, so a bad form,
text or file changes nothing.

The builder is a plain form whose fields (``b-2-rounds``, ``b-2-x-0-name``)
are turned into the text format's values and read by the same reader as a
file, so its problems carry the same paths (``blocks[2].rounds``) and are
shown next to the block and field they concern. Whatever the builder doesn't
edit (cues, targets, circuits, repeats) rides along in hidden JSON fields, so
editing in the builder never drops it.
"""

from __future__ import annotations

import dataclasses
import functools
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

import yaml
from starlette.datastructures import FormData, UploadFile
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import FileResponse, RedirectResponse, Response
from starlette.routing import BaseRoute, Route

from classroom.db import routines as routine_db
from classroom.db.models import Instructor
from classroom.db.models import Routine as RoutineRow
from classroom.domain import limits
from classroom.domain.durations import format_duration
from classroom.domain.errors import DomainError, Problem, RoutineFormatError
from classroom.domain.formats.source import load_json, load_yaml
from classroom.domain.formats.text import dump_yaml, parse_routine
from classroom.domain.formats.writer import routine_to_data
from classroom.domain.routine import Routine
from classroom.routine_files import TITLE_MAX, read_routine, stored_source
from classroom.web.accounts import require_instructor
from classroom.web.csrf import checked_form
from classroom.web.form_limits import FormBudget
from classroom.web.routine_form import (
    BUILDER_KINDS,
    KIND_TITLES,
    SCORE_CHOICES,
    BuilderState,
    Checked,
    _compiled,
    _text,
    apply_action,
    builder_state,
    check_data,
    check_text,
    new_block,
    problem_slots,
    routine_data,
    slot_ids,
    state_from_form,
    timeline_view,
)
from classroom.web.templating import render

SCHEMA = routine_db.LIBRARY.parent / "domain" / "formats" / "routine.schema.json"

NO_SUCH_ROUTINE = "No such routine."
BUILT_IN_READ_ONLY = "Built-in routines can't be changed. Duplicate it, then edit your copy."
NO_FILE = "Choose a routine file to upload."
UPLOAD_TOO_LARGE = (
    f"That upload is too large: a routine file can be at most {limits.MAX_FILE_BYTES:,} bytes."
)

# A form holding a routine as text may be a little larger than the file itself.
FORM_BUDGET = FormBudget(
    max_bytes=2 * limits.MAX_FILE_BYTES + 64 * 1024,
    max_fields=1000,
    max_part_bytes=2 * limits.MAX_FILE_BYTES,
)
UPLOAD_BUDGET = FormBudget(
    max_bytes=limits.MAX_FILE_BYTES + 64 * 1024,
    max_fields=10,
    max_part_bytes=limits.MAX_FILE_BYTES,
    max_files=1,
    too_large=UPLOAD_TOO_LARGE,
)
BUDGETS = (("/console/routines/upload", UPLOAD_BUDGET), ("/console/routines/", FORM_BUDGET))
"""The form budgets of these pages (classroom/web/form_limits.py), by path prefix."""


@dataclass(frozen=True, slots=True)
class Entry:
    row: RoutineRow
    total: str
    segments: int
    description: str
    own: bool


@functools.lru_cache(maxsize=256)
def _description(source: str, source_format: str) -> str:
    try:
        return parse_routine(source, "json" if source_format == "json" else "yaml").description
    except DomainError:
        return ""


def _entries(rows: Iterable[RoutineRow], query: str) -> list[Entry]:
    needle = query.strip().casefold()
    entries = []
    for row in rows:
        try:
            timeline = routine_db.timeline_for(row)
        except (DomainError, ValueError):
            continue
        description = _description(row.source, row.source_format)
        if needle and needle not in row.title.casefold() and needle not in description.casefold():
            continue
        entries.append(
            Entry(
                row=row,
                total=format_duration(timeline.total_ms),
                segments=len(timeline.segments),
                description=description,
                own=row.instructor_id is not None,
            )
        )
    return entries


async def library(request: Request) -> Response:
    instructor = await require_instructor(request)
    query = request.query_params.get("q", "")[: limits.MAX_TEXT]
    archived = request.query_params.get("view") == "archived"
    return await _library_page(request, instructor, query=query, archived=archived)


async def _library_page(
    request: Request,
    instructor: Instructor,
    *,
    query: str = "",
    archived: bool = False,
    upload_problems: list[Problem] | None = None,
    status_code: int = 200,
) -> Response:
    async with request.app.state.sessions() as db:
        rows = await routine_db.library_rows(db, instructor.id, archived=archived)
    context = {
        "instructor": instructor,
        "entries": _entries(rows, query),
        "query": query,
        "archived": archived,
        "upload_problems": upload_problems or [],
        "max_file_bytes": limits.MAX_FILE_BYTES,
    }
    if request.headers.get("hx-target") == "routine-list":
        return render(request, "fragments/routine_list.html", context)
    return render(request, "pages/routines.html", context, status_code)


def _routine_id(request: Request) -> int:
    try:
        return int(request.path_params["routine_id"])
    except (KeyError, ValueError):
        raise HTTPException(404, NO_SUCH_ROUTINE) from None


async def _viewable(request: Request, instructor: Instructor) -> RoutineRow:
    async with request.app.state.sessions() as db:
        row = await routine_db.get_viewable(db, instructor.id, _routine_id(request))
    if row is None:
        raise HTTPException(404, NO_SUCH_ROUTINE)
    return row


async def _own(request: Request, instructor: Instructor) -> RoutineRow:
    """The instructor's own routine at this path: 404 if not theirs, 403 if built-in."""
    row = await _viewable(request, instructor)
    if row.instructor_id is None:
        raise HTTPException(403, BUILT_IN_READ_ONLY)
    return row


async def routine_page(request: Request) -> Response:
    instructor = await require_instructor(request)
    row = await _viewable(request, instructor)
    return _routine_page(request, instructor, row)


def _routine_page(
    request: Request, instructor: Instructor, row: RoutineRow, warnings: Iterable[str] = ()
) -> Response:
    timeline = routine_db.timeline_for(row)
    context = {
        "instructor": instructor,
        "routine": row,
        "own": row.instructor_id is not None,
        "description": _description(row.source, row.source_format),
        "timeline": timeline_view(timeline),
        "warnings": list(warnings),
    }
    return render(request, "pages/routine.html", context)


async def _form(request: Request) -> FormData:
    """The CSRF-checked form; :data:`BUDGETS` bound its size before it is read."""
    return await checked_form(request)


async def duplicate(request: Request) -> Response:
    instructor = await require_instructor(request)
    await _form(request)
    row = await _viewable(request, instructor)
    routine = parse_routine(row.source, "json" if row.source_format == "json" else "yaml")
    title = f"{routine.title[: TITLE_MAX - len(' (copy)')]} (copy)"
    copy = dataclasses.replace(routine, title=title)
    async with request.app.state.sessions.begin() as db:
        new = await routine_db.store_routine(db, instructor.id, title, "yaml", dump_yaml(copy))
    return RedirectResponse(f"/console/routines/{new.id}", status_code=303)


async def archive(request: Request) -> Response:
    return await _set_archived(request, archived=True)


async def restore(request: Request) -> Response:
    return await _set_archived(request, archived=False)


async def _set_archived(request: Request, *, archived: bool) -> Response:
    instructor = await require_instructor(request)
    await _form(request)
    routine_id = _routine_id(request)
    async with request.app.state.sessions.begin() as db:
        row = await routine_db.get_viewable(db, instructor.id, routine_id)
        if row is None:
            raise HTTPException(404, NO_SUCH_ROUTINE)
        if row.instructor_id is None:
            raise HTTPException(403, BUILT_IN_READ_ONLY)
        row.archived = archived
    target = "/console/routines" + ("" if archived else "?view=archived")
    return RedirectResponse(target, status_code=303)


# -- the builder ---------------------------------------------------------------------


def _state_of(row: RoutineRow) -> BuilderState:
    routine = parse_routine(row.source, "json" if row.source_format == "json" else "yaml")
    return builder_state(routine_to_data(routine))


def _builder_context(
    instructor: Instructor, state: BuilderState, routine_id: int | None, checked: Checked
) -> dict[str, Any]:
    return {
        "instructor": instructor,
        "state": state,
        "routine_id": routine_id,
        "action": f"/console/routines/{routine_id}/edit" if routine_id else "/console/routines/new",
        "checked": checked,
        "timeline": timeline_view(checked.timeline) if checked.timeline else None,
        "slots": problem_slots(state, checked.problems),
        "slot_ids": slot_ids(state),
        "kinds": [(kind, KIND_TITLES[kind]) for kind in BUILDER_KINDS],
        "score_choices": SCORE_CHOICES,
    }


def _builder_page(
    request: Request,
    instructor: Instructor,
    state: BuilderState,
    routine_id: int | None,
    status_code: int = 200,
) -> Response:
    checked = check_data(routine_data(state))
    context = _builder_context(instructor, state, routine_id, checked)
    if request.headers.get("hx-request") and request.headers.get("hx-target") == "builder":
        return render(request, "fragments/routine_builder.html", context)
    return render(request, "pages/routine_builder.html", context, status_code)


async def new_page(request: Request) -> Response:
    instructor = await require_instructor(request)
    state = BuilderState(title="New routine", blocks=[new_block("warmup"), new_block("intervals")])
    return _builder_page(request, instructor, state, None)


async def edit_page(request: Request) -> Response:
    instructor = await require_instructor(request)
    row = await _own(request, instructor)
    return _builder_page(request, instructor, _state_of(row), row.id)


async def _form_routine_id(request: Request, instructor: Instructor, form: FormData) -> int | None:
    """The routine a builder or YAML form edits (``routine_id``); it must be the instructor's."""
    value = form.get("routine_id")
    if not isinstance(value, str) or not value:
        return None
    if not value.isdigit():
        raise HTTPException(404, NO_SUCH_ROUTINE)
    async with request.app.state.sessions() as db:
        row = await routine_db.get_own(db, instructor.id, int(value))
    if row is None:
        raise HTTPException(404, NO_SUCH_ROUTINE)
    return row.id


async def builder_check(request: Request) -> Response:
    """Check the builder's form as it is typed: the preview, and every problem in its place."""
    instructor = await require_instructor(request)
    form = await _form(request)
    state = state_from_form(form)
    checked = check_data(routine_data(state))
    context = _builder_context(instructor, state, None, checked)
    return render(request, "fragments/routine_check.html", {**context, "oob": True})


async def builder_edit(request: Request) -> Response:
    """Add, move or remove a block or an exercise; answers with the builder redrawn."""
    instructor = await require_instructor(request)
    form = await _form(request)
    routine_id = await _form_routine_id(request, instructor, form)
    state = state_from_form(form)
    new_kind = form.get("new_kind")
    apply_action(state, _text(form.get("action")), new_kind if isinstance(new_kind, str) else "")
    return _builder_page(request, instructor, state, routine_id)


async def save_new(request: Request) -> Response:
    instructor = await require_instructor(request)
    form = await _form(request)
    return await _save_builder(request, instructor, form, None)


async def save_edit(request: Request) -> Response:
    instructor = await require_instructor(request)
    form = await _form(request)
    row = await _own(request, instructor)
    return await _save_builder(request, instructor, form, row.id)


async def _save_builder(
    request: Request, instructor: Instructor, form: FormData, routine_id: int | None
) -> Response:
    state = state_from_form(form)
    checked = check_data(routine_data(state))
    if not checked.ok or checked.routine is None:
        return _builder_page(request, instructor, state, routine_id, status_code=400)
    return await _store(
        request, instructor, routine_id, checked.routine, dump_yaml(checked.routine)
    )


async def _store(
    request: Request, instructor: Instructor, routine_id: int | None, routine: Routine, source: str
) -> Response:
    async with request.app.state.sessions.begin() as db:
        if routine_id is None:
            row = await routine_db.store_routine(db, instructor.id, routine.title, "yaml", source)
        else:
            found = await routine_db.get_own(db, instructor.id, routine_id)
            if found is None:
                raise HTTPException(404, NO_SUCH_ROUTINE)
            row = await routine_db.update_routine(db, found, routine.title, "yaml", source)
    return RedirectResponse(f"/console/routines/{row.id}", status_code=303)


# -- the YAML view -------------------------------------------------------------------


def _yaml_page(
    request: Request,
    instructor: Instructor,
    source: str,
    routine_id: int | None,
    status_code: int = 200,
) -> Response:
    checked = check_text(source)
    context = {
        "instructor": instructor,
        "source": source,
        "routine_id": routine_id,
        "action": (
            f"/console/routines/{routine_id}/yaml" if routine_id else "/console/routines/new/yaml"
        ),
        "checked": checked,
        "timeline": timeline_view(checked.timeline) if checked.timeline else None,
        "max_file_bytes": limits.MAX_FILE_BYTES,
    }
    return render(request, "pages/routine_yaml.html", context, status_code)


async def yaml_page(request: Request) -> Response:
    instructor = await require_instructor(request)
    row = await _own(request, instructor)
    source = row.source if row.source_format == "yaml" else dump_yaml(_checked_row(row))
    return _yaml_page(request, instructor, source, row.id)


def _checked_row(row: RoutineRow) -> Routine:
    return parse_routine(row.source, "json" if row.source_format == "json" else "yaml")


async def new_yaml_page(request: Request) -> Response:
    instructor = await require_instructor(request)
    starter = "title: New routine\nblocks:\n  - type: warmup\n    duration: 5:00\n"
    return _yaml_page(request, instructor, starter, None)


def _source(form: FormData) -> str:
    value = form.get("source")
    return value.replace("\r\n", "\n") if isinstance(value, str) else ""


async def yaml_check(request: Request) -> Response:
    instructor = await require_instructor(request)
    form = await _form(request)
    checked = check_text(_source(form))
    context = {
        "instructor": instructor,
        "checked": checked,
        "timeline": timeline_view(checked.timeline) if checked.timeline else None,
    }
    return render(request, "fragments/routine_yaml_check.html", context)


async def save_yaml_new(request: Request) -> Response:
    instructor = await require_instructor(request)
    form = await _form(request)
    return await _save_yaml(request, instructor, _source(form), None)


async def save_yaml_edit(request: Request) -> Response:
    instructor = await require_instructor(request)
    form = await _form(request)
    row = await _own(request, instructor)
    return await _save_yaml(request, instructor, _source(form), row.id)


async def _save_yaml(
    request: Request, instructor: Instructor, source: str, routine_id: int | None
) -> Response:
    checked = check_text(source)
    if not checked.ok or checked.routine is None:
        return _yaml_page(request, instructor, source, routine_id, status_code=400)
    return await _store(request, instructor, routine_id, checked.routine, source)


async def as_yaml(request: Request) -> Response:
    """The builder's unsaved state, shown in the YAML view."""
    instructor = await require_instructor(request)
    form = await _form(request)
    routine_id = await _form_routine_id(request, instructor, form)
    data = routine_data(state_from_form(form))
    checked = check_data(data)
    if checked.routine is not None:
        source = dump_yaml(checked.routine)
    else:
        source = yaml.safe_dump(data, sort_keys=False, allow_unicode=True, width=100)
    return _yaml_page(request, instructor, source, routine_id)


async def as_builder(request: Request) -> Response:
    """The YAML view's unsaved text, shown in the builder (if it reads as a routine's values)."""
    instructor = await require_instructor(request)
    form = await _form(request)
    routine_id = await _form_routine_id(request, instructor, form)
    source = _source(form)
    checked = check_text(source)
    if checked.routine is not None:
        return _builder_page(
            request, instructor, builder_state(routine_to_data(checked.routine)), routine_id
        )
    try:
        value = (load_json(source) if source.lstrip().startswith("{") else load_yaml(source)).value
    except RoutineFormatError:
        value = None
    if not isinstance(value, dict):
        return _yaml_page(request, instructor, source, routine_id, status_code=400)
    return _builder_page(request, instructor, builder_state(value), routine_id)


# -- uploads and the schema ----------------------------------------------------------


async def upload(request: Request) -> Response:
    """Store an uploaded routine file (YAML, JSON or .zwo) as the instructor's routine."""
    instructor = await require_instructor(request)
    try:
        form = await _form(request)
        return await _store_upload(request, instructor, form)
    finally:
        await request.close()  # the uploaded file's spool, even when the form is refused


async def _store_upload(request: Request, instructor: Instructor, form: FormData) -> Response:
    file = form.get("file")
    if not isinstance(file, UploadFile) or not file.filename:
        problems = [Problem("", NO_FILE)]
        return await _library_page(request, instructor, upload_problems=problems, status_code=400)
    data = await file.read(limits.MAX_FILE_BYTES + 1)
    try:
        loaded = read_routine(data, filename=file.filename)
    except RoutineFormatError as error:
        problems = list(error.problems)
        status = 413 if len(data) > limits.MAX_FILE_BYTES else 400
        return await _library_page(
            request, instructor, upload_problems=problems, status_code=status
        )
    checked = _compiled(loaded.routine)
    if not checked.ok:
        return await _library_page(
            request, instructor, upload_problems=checked.problems, status_code=400
        )
    source_format, source = stored_source(loaded, data)
    async with request.app.state.sessions.begin() as db:
        row = await routine_db.store_routine(
            db, instructor.id, loaded.routine.title, source_format, source
        )
    if not loaded.warnings:
        return RedirectResponse(f"/console/routines/{row.id}", status_code=303)
    return _routine_page(request, instructor, row, loaded.warnings)


async def routine_schema(request: Request) -> Response:
    return FileResponse(SCHEMA, media_type="application/schema+json")


routes: list[BaseRoute] = [
    Route("/schemas/routine.schema.json", routine_schema),
    Route("/console/routines", library),
    Route("/console/routines/upload", upload, methods=["POST"]),
    Route("/console/routines/new", new_page, methods=["GET"]),
    Route("/console/routines/new", save_new, methods=["POST"]),
    Route("/console/routines/new/yaml", new_yaml_page, methods=["GET"]),
    Route("/console/routines/new/yaml", save_yaml_new, methods=["POST"]),
    Route("/console/routines/check", builder_check, methods=["POST"]),
    Route("/console/routines/builder", builder_edit, methods=["POST"]),
    Route("/console/routines/check-yaml", yaml_check, methods=["POST"]),
    Route("/console/routines/as-yaml", as_yaml, methods=["POST"]),
    Route("/console/routines/as-builder", as_builder, methods=["POST"]),
    Route("/console/routines/{routine_id:int}", routine_page),
    Route("/console/routines/{routine_id:int}/edit", edit_page, methods=["GET"]),
    Route("/console/routines/{routine_id:int}/edit", save_edit, methods=["POST"]),
    Route("/console/routines/{routine_id:int}/yaml", yaml_page, methods=["GET"]),
    Route("/console/routines/{routine_id:int}/yaml", save_yaml_edit, methods=["POST"]),
    Route("/console/routines/{routine_id:int}/duplicate", duplicate, methods=["POST"]),
    Route("/console/routines/{routine_id:int}/archive", archive, methods=["POST"]),
    Route("/console/routines/{routine_id:int}/restore", restore, methods=["POST"]),
]
