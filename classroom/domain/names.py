"""One policy for every name people type: nicknames, teams, rooms, routines, displays, shout-outs.

What people type is shown on a wall to a whole room, so a name must read as it
is stored, the same on every screen:

* It is normalised to NFC, so "é" typed as one character or as "e" and an
  accent is one name.
* Invisible controls go, wherever they are: bidirectional overrides, embeddings
  and isolates (which reorder what follows them, and let "Team Blue" display as
  someone else's name), zero-width spaces, word joiners, soft hyphens, byte-order
  marks, C0 and C1 controls, lone surrogates, and the fillers that draw nothing
  (Hangul fillers, the blank Braille pattern).
* The joiners stay only where they join: the zero-width joiner (ZWJ) inside an
  emoji sequence (👩‍💻 is one glyph; without it, two) and, like the zero-width
  non-joiner, between letters of the scripts that need them to shape words
  (Arabic, Syriac, the Indic scripts, Sinhala, Myanmar, Khmer, Mongolian,
  Tibetan). Emoji tag sequences (the flags of England, Scotland and Wales) keep
  their tags.

Line breaks and tabs are left for the caller: a name folds every run of
white space to one space, a routine's description keeps its lines.
"""

from __future__ import annotations

import unicodedata

ZWJ = "\u200d"
ZWNJ = "\u200c"
VS16 = "\ufe0f"
BLACK_FLAG = "\U0001f3f4"
_TAGS = range(0xE0020, 0xE0080)
_KEYCAP = "\u20e3"

# Characters that draw nothing but are not format characters.
_FILLERS = frozenset("\u115f\u1160\u3164\uffa0\u2800\u034f\u17b4\u17b5")
_BREAKS = frozenset("\n\t")
_LINE_SEPARATORS = frozenset("\u2028\u2029\x85\x0b\x0c\r")

# Scripts that shape words with ZWJ and ZWNJ between their letters.
_JOINING_SCRIPTS = (
    range(0x0600, 0x0900),  # Arabic, Syriac, Arabic Supplement, Thaana, N'Ko, Samaritan, …
    range(0x0900, 0x0E00),  # Devanagari to Sinhala
    range(0x0F00, 0x1100),  # Tibetan, Myanmar
    range(0x1780, 0x18B0),  # Khmer, Mongolian
    range(0xA8E0, 0xA900),  # Devanagari Extended
    range(0xFB50, 0xFE00),  # Arabic Presentation Forms-A
    range(0xFE70, 0xFF00),  # Arabic Presentation Forms-B
)
# Where emoji are (and the pieces of their sequences: skin tones, VS16, keycaps).
_EMOJI = (
    range(0x1F000, 0x1FB00),
    range(0x2600, 0x27C0),
    range(0x2300, 0x2400),
    range(0x2B00, 0x2C00),
    range(0x2190, 0x2200),
    range(0x3030, 0x3031),
    range(0x303D, 0x303E),
    range(0x3297, 0x329A),
)
_EMOJI_SINGLES = frozenset("\u00a9\u00ae\u203c\u2049\u2122\u2139\u24c2" + VS16 + _KEYCAP)


def visible(raw: str) -> str:
    """``raw`` in NFC, without invisible controls; joiners kept where they join.

    Line and paragraph separators become line breaks; the caller decides what
    white space means for its text.
    """
    text = unicodedata.normalize("NFC", raw)
    kept: list[str] = []
    for i, char in enumerate(text):
        if char in _LINE_SEPARATORS:
            kept.append("\n")
        elif char in _BREAKS or not _invisible(char):
            kept.append(char)
        elif char in (ZWJ, ZWNJ):
            after = text[i + 1] if i + 1 < len(text) else ""
            if kept and after and _joins(kept[-1], char, after):
                kept.append(char)
        elif ord(char) in _TAGS and kept and (kept[-1] == BLACK_FLAG or ord(kept[-1]) in _TAGS):
            kept.append(char)
    # Again: taking a control out from between a letter and its accent joins them.
    return unicodedata.normalize("NFC", "".join(kept))


def one_line(raw: str) -> str:
    """A name: :func:`visible`, with every run of white space one space, trimmed."""
    return " ".join(visible(raw).split())


def _invisible(char: str) -> bool:
    return char in _FILLERS or unicodedata.category(char) in ("Cc", "Cf", "Cs", "Zl", "Zp")


def _joins(before: str, joiner: str, after: str) -> bool:
    """Whether ``joiner`` between ``before`` and ``after`` does a joiner's work."""
    if joiner == ZWJ and _emoji(before) and _emoji(after):
        return True
    return _shaped(before) and _shaped(after)


def _emoji(char: str) -> bool:
    code = ord(char)
    return char in _EMOJI_SINGLES or any(code in block for block in _EMOJI)


def _shaped(char: str) -> bool:
    """A letter or mark of a script that joins its letters (see ``_JOINING_SCRIPTS``)."""
    code = ord(char)
    return unicodedata.category(char)[0] in "LM" and any(code in s for s in _JOINING_SCRIPTS)
