"""Text from nodes and config files is data: made safe before it reaches any output.

`clean` makes one string safe everywhere: secrets redacted, control characters shown
visibly (a NUL, ESC or BEL never reaches a file or the terminal), lone surrogates
replaced, and the length capped at TEXT_MAX with a note saying how much was cut.
`fenced` puts such text into a Markdown code block it cannot close.

    >>> clean("2.0.1\\x1b[2J\\x07")
    '2.0.1\\\\x1b[2J\\\\x07'
    >>> print(fenced("```\\n## PASS"))
    ````
    ```
    ## PASS
    ````
"""

from __future__ import annotations

import re

from preflight.core.redact import redact

TEXT_MAX = 2000  # characters of one string from a node in any report
_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f\u2028\u2029\ud800-\udfff]")


def _visible(match: re.Match) -> str:
    code = ord(match.group())
    if 0xD800 <= code <= 0xDFFF:
        return "\ufffd"  # a lone surrogate cannot be written as UTF-8
    return f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}"


def clean(text: object, limit: int = TEXT_MAX) -> str:
    """One string, safe for every output (newlines and tabs kept)."""
    text = text if isinstance(text, str) else str(text)
    if len(text) > limit * 4:  # bound the work before the regexes run
        text = text[: limit * 4]
    text = _CONTROL.sub(_visible, redact(text))
    if len(text) > limit:
        text = text[:limit] + f" [cut: {len(text) - limit} more characters]"
    return text


def one_line(text: object, limit: int = TEXT_MAX) -> str:
    """clean(), with newlines shown as \\n: for table cells and list items."""
    return clean(text, limit).replace("\r", "\\r").replace("\n", "\\n")


def fenced(text: str) -> str:
    """A Markdown code block whose fence is longer than any backtick run inside it."""
    longest = max((len(run) for run in re.findall(r"`+", text)), default=0)
    fence = "`" * max(3, longest + 1)
    return f"{fence}\n{text}\n{fence}"
