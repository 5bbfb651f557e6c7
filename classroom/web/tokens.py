"""Signed tokens for screens that have no login: participants and displays.

A token names its role and the one class it opens; it is signed with the
server's secret (itsdangerous), so it can't be forged or moved to another class.
A display token also names where it came from: a display link of the class
(``display_links``) or a wall paired to the class's room (``displays``), so
that revoking that one link or wall takes back its token and no other.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from itsdangerous import BadSignature, SignatureExpired, URLSafeTimedSerializer

Role = Literal["participant", "display"]
PARTICIPANT_MAX_AGE = 24 * 3600
DISPLAY_MAX_AGE = 30 * 24 * 3600
REVOKED = "this display link was revoked; ask the instructor for a new one"


@dataclass(frozen=True, slots=True)
class Grant:
    role: Role
    class_id: int
    participant_id: int | None = None
    link_id: int | None = None  # a display's link (from the console)
    wall_id: int | None = None  # a display paired to the class's room

    @property
    def source(self) -> tuple[str, int] | None:
        """What a display token came from, as a key: its link or its wall (None: older)."""
        if self.link_id is not None:
            return ("link", self.link_id)
        if self.wall_id is not None:
            return ("wall", self.wall_id)
        return None


class TokenError(Exception):
    """A token that is forged, expired, malformed, or for another class."""


class Tokens:
    def __init__(self, secret: str) -> None:
        self._serializer = URLSafeTimedSerializer(secret, salt="classroom.screen-token")

    def participant(self, class_id: int, participant_id: int) -> str:
        return self._serializer.dumps({"r": "participant", "c": class_id, "p": participant_id})

    def display(self, class_id: int, *, link: int | None = None, wall: int | None = None) -> str:
        """A display's token for ``class_id``, naming its ``link`` or paired ``wall``."""
        data: dict[str, int | str] = {"r": "display", "c": class_id}
        if link is not None:
            data["l"] = link
        if wall is not None:
            data["w"] = wall
        return self._serializer.dumps(data)

    def verify(self, token: str, class_id: int) -> Grant:
        """The grant ``token`` gives for ``class_id``; raises :class:`TokenError`."""
        try:
            data, _ = self._serializer.loads_unsafe(token)
            role = data.get("r") if isinstance(data, dict) else None
            max_age = DISPLAY_MAX_AGE if role == "display" else PARTICIPANT_MAX_AGE
            data = self._serializer.loads(token, max_age=max_age)
        except SignatureExpired:
            raise TokenError("this link has expired") from None
        except BadSignature:
            raise TokenError("this link is not valid") from None
        if not isinstance(data, dict) or data.get("r") not in ("participant", "display"):
            raise TokenError("this link is not valid")
        if data.get("c") != class_id:
            raise TokenError("this link is for another class")
        if data["r"] == "participant":
            participant = data.get("p")
            if not isinstance(participant, int):
                raise TokenError("this link is not valid")
            return Grant("participant", class_id, participant)
        link, wall = data.get("l"), data.get("w")
        if not (link is None or _is_id(link)) or not (wall is None or _is_id(wall)):
            raise TokenError("this link is not valid")
        return Grant("display", class_id, link_id=link, wall_id=wall)


def _is_id(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def bearer_token(authorization: str | None) -> str:
    """The token an ``Authorization: Bearer <token>`` header carries ("" if none)."""
    scheme, _, credentials = (authorization or "").strip().partition(" ")
    return credentials.strip() if scheme.lower() == "bearer" else ""
