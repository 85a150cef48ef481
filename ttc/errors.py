"""One exception type for every error a user can cause and fix.

The CLI prints its message on one line and exits with code 2; library callers can catch it.
"""

from __future__ import annotations

import argparse
import errno
import os
import signal
import sys
import threading
from collections.abc import Callable


class TTCError(Exception):
    """A user-facing error: bad input, a missing resource, a corrupt run directory."""


DISK_FULL = {errno.ENOSPC, errno.EFBIG, errno.EDQUOT}
_CTRL_C = threading.Event()  # set by cli_guard's SIGINT handler while a command runs


def debug_requested(flag: bool = False) -> bool:
    return flag or os.environ.get("TTC_DEBUG", "") not in ("", "0")


def cli_guard(body: Callable[[], int], debug: bool = False, sweep: bool = True) -> int:
    """Run a command's body and turn what a user can meet into one ``error:`` line and an exit code:
    ``TTCError`` and a full disk (ENOSPC, EFBIG, EDQUOT) or other OS error exit 2, Ctrl-C 130 (also when
    Python wrapped it in another exception, or when code that swallowed it failed afterwards), anything else
    (a bug) 1. With ``debug`` (``--debug`` or ``TTC_DEBUG=1``) everything is re-raised with its traceback,
    the chained cause included. For a ``sweep`` (``python -m ttc.run``) the messages say that re-running the
    command resumes and name its --debug flag; the other commands pass ``sweep=False``."""
    _CTRL_C.clear()
    restore = _note_ctrl_c()
    try:
        return body()
    except (KeyboardInterrupt, Exception) as e:
        if debug:
            raise
        # Python wraps an interrupt that lands in a class's __set_name__; an extension's initialisation can
        # swallow it (import torch: numpy's init fails, and the next import of numpy raises ImportError)
        if isinstance(e, KeyboardInterrupt) or _caused_by_interrupt(e) or _CTRL_C.is_set():
            print("interrupted: finished problems are saved; re-run the same command to resume" if sweep
                  else "interrupted", file=sys.stderr)
            return 130
        if isinstance(e, TTCError):
            print(f"error: {e}", file=sys.stderr)
            return 2
        if isinstance(e, OSError):
            if e.errno in DISK_FULL:
                where = f" writing {e.filename}" if e.filename else ""
                kept = "; everything finished before it is kept: free space and re-run the same command to " \
                       "resume" if sweep else ""
                print(f"error: disk full or file size limit reached{where} ({e.strerror}){kept}", file=sys.stderr)
            else:  # a read or a write: the error says which file, not which of the two
                print(f"error: {e.strerror or e}{f': {e.filename}' if e.filename else ''}", file=sys.stderr)
            return 2
        flag = "--debug (or TTC_DEBUG=1)" if sweep else "TTC_DEBUG=1"
        print(f"error: internal error ({type(e).__name__}: {str(e)[:200]}); re-run with {flag} for the traceback",
              file=sys.stderr)
        return 1
    finally:
        restore()
        _CTRL_C.clear()  # a library call after the command must not see it


def check_interrupted() -> None:
    """Raise KeyboardInterrupt if Ctrl-C was pressed while a command runs but the interrupt was swallowed
    (an extension's initialisation can catch it: ``import torch`` while it initialises numpy), so that the
    command stops at this point instead of running on. Long commands call it between steps."""
    if _CTRL_C.is_set():
        raise KeyboardInterrupt


def _note_ctrl_c() -> Callable[[], None]:
    """While the body runs, Ctrl-C still raises KeyboardInterrupt, and is also noted (``check_interrupted``).
    Only in the main thread, and only where SIGINT has Python's default handler; returns what puts it back."""
    if threading.current_thread() is not threading.main_thread() or \
            signal.getsignal(signal.SIGINT) is not signal.default_int_handler:
        return lambda: None

    def handler(signum, frame):
        _CTRL_C.set()
        signal.default_int_handler(signum, frame)

    signal.signal(signal.SIGINT, handler)
    return lambda: signal.signal(signal.SIGINT, signal.default_int_handler)


def _caused_by_interrupt(e: BaseException) -> bool:
    """Whether a KeyboardInterrupt is among the exceptions that led to ``e`` (its causes and contexts)."""
    seen = set()
    while e is not None and id(e) not in seen:
        if isinstance(e, KeyboardInterrupt):
            return True
        seen.add(id(e))
        e = e.__cause__ or e.__context__
    return False


class HelpFormatter(argparse.ArgumentDefaultsHelpFormatter):
    """Each flag's default after its help where there is one to show: not ``(default: None)`` or
    ``(default: False)``, and not a second default after a help that states its own."""

    def _get_help_string(self, action):
        if action.default is None or action.default is False or "default" in (action.help or ""):
            return action.help
        return super()._get_help_string(action)


class OneLineParser(argparse.ArgumentParser):
    """A command's flags, with a usage error as one ``error:`` line that points to ``--help`` (exit 2), not the
    whole usage: every ``ttc`` verb parses with it."""

    def error(self, message: str):
        print(f"error: {message} (see {self.prog} --help)", file=sys.stderr)
        sys.exit(2)


def first_line(e: BaseException, limit: int | None = None) -> str:
    """The first line of an exception's message (its type name if the message is empty), for one-line
    ``error:`` messages; cut to ``limit`` characters if given."""
    text = str(e).strip()
    line = text.splitlines()[0] if text else type(e).__name__
    return line if limit is None else line[:limit]
