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
# control characters, line/paragraph separators, lone surrogates, and the noncharacters
# U+FDD0-U+FDEF and U+xFFFE/U+xFFFF (XML and many viewers refuse them)
_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f\u2028\u2029\ud800-\udfff\ufdd0-\ufdef"
                      r"\ufffe\uffff]")


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


MAX_DEPTH = 64  # facts nest 8 deep; a node's document deeper than this is refused


def depth_ok(doc: object, limit: int = MAX_DEPTH) -> bool:
    """Whether a decoded JSON document nests no deeper than limit (without recursion, so
    a 5,000-deep document cannot blow the stack of whatever reads it next).

    >>> depth_ok({"a": [{"b": 1}]}), depth_ok([[[[1]]]], limit=3)
    (True, False)
    """
    stack = [(doc, 1)]
    while stack:
        value, level = stack.pop()
        if isinstance(value, dict):
            children = value.values()
        elif isinstance(value, list):
            children = value
        else:
            continue
        if level > limit:
            return False
        stack.extend((child, level + 1) for child in children)
    return True
