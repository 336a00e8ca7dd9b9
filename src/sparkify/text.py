"""Text from the data or a file name, made safe to show to people."""

from __future__ import annotations

import re

# Characters a terminal acts on instead of showing: C0 and C1 controls (escape sequences,
# bell, carriage return...), DEL, line and paragraph separators, bidirectional overrides.
_ESCAPES = {
    **{c: f"\\x{c:02x}" for c in (*range(0x20), *range(0x7F, 0xA0))},
    **{c: f"\\u{c:04x}" for c in (0x2028, 0x2029, *range(0x202A, 0x202F), *range(0x2066, 0x206A))},
    ord("\t"): "\\t",
    ord("\n"): "\\n",
    ord("\r"): "\\r",
}
_SURROGATE = re.compile("[\ud800-\udfff]")


def printable(text: str) -> str:
    """``text`` safe to show on a terminal, as one line: every character a terminal would act
    on is written as a backslash escape (ESC as \\x1b, a newline as \\n), and so is every byte
    of a file name that is not UTF-8 (kept by Python as a lone surrogate)."""
    if _SURROGATE.search(text):
        try:
            raw = text.encode("utf-8", "surrogateescape")
        except UnicodeEncodeError:  # a lone surrogate that came from the data, not a name
            raw = text.encode("utf-8", "backslashreplace")
        text = raw.decode("utf-8", "backslashreplace")
    return text.translate(_ESCAPES)
