"""WebSocket frames, encoded once for every recipient.

A server's frames are not masked (RFC 6455 §5.1), so the bytes of one text
message are the same for every socket. The hub builds them once per message and
writes the same ``bytes`` object to every transport: the per-recipient cost is
then one ``transport.write``, which is the kernel's floor.
"""

from __future__ import annotations

from dataclasses import dataclass

_TEXT = 0x81  # FIN + opcode 1 (text)


def text_frame(payload: bytes) -> bytes:
    """One unfragmented, unmasked text frame carrying ``payload`` (UTF-8)."""
    length = len(payload)
    if length < 126:
        return bytes((_TEXT, length)) + payload
    if length < 1 << 16:
        return bytes((_TEXT, 126)) + length.to_bytes(2, "big") + payload
    return bytes((_TEXT, 127)) + length.to_bytes(8, "big") + payload


@dataclass(frozen=True, slots=True)
class Outgoing:
    """A message ready to send: its text (for ASGI) and its frame (for a transport)."""

    text: str
    frame: bytes
    seq: int | None = None

    @classmethod
    def of(cls, text: str, seq: int | None = None) -> Outgoing:
        return cls(text, text_frame(text.encode()), seq)
