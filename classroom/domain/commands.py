"""Commands given to a live class. Each validates itself when built.

Commands that move the class (next, previous, jump) may name the segment the
sender was looking at (``from_segment``). If the class has moved on since, the
command is rejected: two consoles pressing "next" on the same segment advance
the class once.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from classroom.domain.errors import ValidationError
from classroom.domain.names import one_line

MAX_SHOUT_LENGTH = 140
MAX_EXTEND_MS = 10 * 60_000


@dataclass(frozen=True, slots=True, kw_only=True)
class Command:
    """Base of every command; ``name`` is the word used on the wire."""

    @property
    def name(self) -> str:
        return COMMAND_NAMES[type(self)]


@dataclass(frozen=True, slots=True, kw_only=True)
class Start(Command):
    pass


@dataclass(frozen=True, slots=True, kw_only=True)
class Pause(Command):
    pass


@dataclass(frozen=True, slots=True, kw_only=True)
class Resume(Command):
    pass


@dataclass(frozen=True, slots=True, kw_only=True)
class Next(Command):
    """End the current segment now and start the next one."""

    from_segment: int | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class Previous(Command):
    """Go back to the start of the previous segment (or restart the first)."""

    from_segment: int | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class Jump(Command):
    """Start segment ``index`` now."""

    index: int
    from_segment: int | None = None

    def __post_init__(self) -> None:
        if self.index < 0:
            raise ValidationError("segments are numbered from 0")


@dataclass(frozen=True, slots=True, kw_only=True)
class Extend(Command):
    """Lengthen (or, with a negative amount, shorten) the current segment."""

    by_ms: int

    def __post_init__(self) -> None:
        if self.by_ms == 0 or abs(self.by_ms) > MAX_EXTEND_MS:
            limit = MAX_EXTEND_MS // 60_000
            raise ValidationError(f"extend by 1 second to {limit} minutes, more or less")
        if self.by_ms % 1000:
            raise ValidationError("extend by whole seconds")


@dataclass(frozen=True, slots=True, kw_only=True)
class Finish(Command):
    pass


@dataclass(frozen=True, slots=True, kw_only=True)
class Cancel(Command):
    pass


@dataclass(frozen=True, slots=True, kw_only=True)
class Shout(Command):
    """A shout-out (a manual cue) from the instructor, shown on every screen."""

    text: str

    def __post_init__(self) -> None:
        text = one_line(self.text)
        if not text:
            raise ValidationError("a shout-out needs some text")
        if len(text) > MAX_SHOUT_LENGTH:
            raise ValidationError(f"a shout-out is at most {MAX_SHOUT_LENGTH} characters")
        object.__setattr__(self, "text", text)


@dataclass(frozen=True, slots=True, kw_only=True)
class MarkFinished(Command):
    """A participant marks their own finish of an AMRAP or For Time segment."""

    participant_id: int


COMMAND_NAMES: dict[type[Command], str] = {
    Start: "start",
    Pause: "pause",
    Resume: "resume",
    Next: "next",
    Previous: "previous",
    Jump: "jump",
    Extend: "extend",
    Finish: "finish",
    Cancel: "cancel",
    Shout: "shout",
    MarkFinished: "mark_finished",
}
COMMANDS_BY_NAME = {name: cls for cls, name in COMMAND_NAMES.items()}


def _required_number(fields: Mapping[str, object], key: str, from_form: bool) -> int:
    number = _whole_number(fields, key, from_form)
    if number is None:
        raise ValidationError(f"{key} is missing")
    return number


def _whole_number(fields: Mapping[str, object], key: str, from_form: bool) -> int | None:
    """A whole-number field: a JSON integer, or, from a form, its digits as text."""
    value = fields.get(key)
    if value is None or (from_form and value == ""):
        return None
    if isinstance(value, str) and from_form:
        try:
            value = int(value.strip())
        except ValueError:
            raise ValidationError(f"{key} must be a whole number") from None
    if not isinstance(value, int) or isinstance(value, bool) or abs(value) > 10**9:
        raise ValidationError(f"{key} must be a whole number")
    return value


def parse_command(
    name: object, fields: Mapping[str, object], *, from_form: bool = False
) -> Command:
    """The command named ``name`` with its fields (from a JSON message, or a form).

    In a JSON message a number is a JSON number: ``"2"`` is text, and refused,
    as a score's ``segment`` is. A form's fields are all text, so ``from_form``
    reads a whole number from its digits.

    Participants' own commands (``mark_finished``) are built by the shell from who
    is connected, never from what the message says, so they are not parsed here.
    Raises :class:`ValidationError` with a sentence for people.
    """
    if not isinstance(name, str) or name not in COMMANDS_BY_NAME or name == "mark_finished":
        raise ValidationError(f"unknown command {str(name)[:40]!r}")
    cls = COMMANDS_BY_NAME[name]
    if cls is Shout:
        text = fields.get("text")
        if not isinstance(text, str):
            raise ValidationError("a shout-out needs some text")
        return Shout(text=text)
    if cls is Extend:
        return Extend(by_ms=_required_number(fields, "seconds", from_form) * 1000)
    if cls in (Next, Previous, Jump):
        seen = _whole_number(fields, "from_segment", from_form)
        if cls is Jump:
            return Jump(index=_required_number(fields, "index", from_form), from_segment=seen)
        return cls(from_segment=seen)  # type: ignore[call-arg]
    return cls()
