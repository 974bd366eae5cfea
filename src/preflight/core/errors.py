"""Errors meant for the person running the harness: one line, no traceback, exit 2."""


import difflib


def did_you_mean(word: str, valid) -> str:
    """The tail of an unknown-key error: the closest valid key, else all of them.

    >>> did_you_mean("addres", ["address", "port"])
    " (did you mean 'address'?)"
    """
    hint = difflib.get_close_matches(str(word), list(valid), n=1)
    return f" (did you mean '{hint[0]}'?)" if hint else f" (valid keys: {', '.join(valid)})"


class UserError(Exception):
    """A mistake in what the user gave us (a file, an option). str() is the whole message."""

    exit_code = 2
