"""One exception type for every error a user can cause and fix.

The CLI prints its message on one line and exits with code 2; library callers can catch it.
"""


class TTCError(Exception):
    """A user-facing error: bad input, a missing resource, a corrupt run directory."""
