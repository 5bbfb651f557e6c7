"""Commands an instructor gives a class. Each validates itself when built."""

from __future__ import annotations

from dataclasses import dataclass

from classroom.domain.errors import ValidationError

MAX_SHOUT_LENGTH = 140


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
class Finish(Command):
    pass


@dataclass(frozen=True, slots=True, kw_only=True)
class Cancel(Command):
    pass


@dataclass(frozen=True, slots=True, kw_only=True)
class Shout(Command):
    """A shout-out from the instructor, shown on every screen."""

    text: str

    def __post_init__(self) -> None:
        text = self.text.strip()
        if not text:
            raise ValidationError("a shout-out needs some text")
        if len(text) > MAX_SHOUT_LENGTH:
            raise ValidationError(f"a shout-out is at most {MAX_SHOUT_LENGTH} characters")
        object.__setattr__(self, "text", text)


COMMAND_NAMES: dict[type[Command], str] = {
    Start: "start",
    Pause: "pause",
    Resume: "resume",
    Finish: "finish",
    Cancel: "cancel",
    Shout: "shout",
}
COMMANDS_BY_NAME = {name: cls for cls, name in COMMAND_NAMES.items()}
