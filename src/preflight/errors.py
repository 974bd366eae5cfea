"""Errors meant for the person running the harness: one line, no traceback, exit 2."""


class UserError(Exception):
    """A mistake in what the user gave us (a file, an option). str() is the whole message."""

    exit_code = 2
