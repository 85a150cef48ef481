"""One exception type for every error a user can cause and fix.

The CLI prints its message on one line and exits with code 2; library callers can catch it.
"""


class TTCError(Exception):
    """A user-facing error: bad input, a missing resource, a corrupt run directory."""


def first_line(e: BaseException, limit: int | None = None) -> str:
    """The first line of an exception's message (its type name if the message is empty), for one-line
    ``error:`` messages; cut to ``limit`` characters if given."""
    text = str(e).strip()
    line = text.splitlines()[0] if text else type(e).__name__
    return line if limit is None else line[:limit]
