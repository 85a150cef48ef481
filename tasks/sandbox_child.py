"""Launcher of the code sandbox, run as ``python -I -S -c <this source> MODE JOB MEMORY CPU FSIZE NPROC NOFILE
NONCE_FD VERDICT_FD`` (inside bubblewrap, or as a plain process in the fallback mode; see ``tasks/sandbox.py``).

It reads the job from stdin, applies the resource limits to itself, writes ``isolation=<how>`` on
VERDICT_FD, and forks. The child runs the program; this process, the judge, never runs program code.
The child closes NONCE_FD and VERDICT_FD before the program starts and cannot read the judge's memory or
descriptors (the judge is not dumpable and no capability is left), so the program never sees the nonce
and cannot write the verdict. JOB is:

* ``run``: stdin is the program. The judge copies the nonce from NONCE_FD to VERDICT_FD when the child
  ran it to its end (no exception, no early exit) and exited 0. The child tells the judge it reached the
  end on a pipe the program also holds, so a program that attacks its own process can still forge this
  (see SECURITY.md); ``run_judged`` is the verdict that holds against it.
* ``judge``: stdin is JSON ``{"solution", "tests", "entry_point"}``. The child runs the solution, then
  serves calls of ``entry_point``: arguments and results cross a pipe as plain data (None, bool, int,
  float, complex, str, bytes, and lists, tuples, dicts, sets, frozensets of them; exact types, decoded
  by the judge, so an object whose ``==`` is always true cannot cross). The judge runs ``tests`` itself
  and calls ``check(candidate)`` with a proxy that forwards each call; the nonce is written only when
  ``check`` returned. Nothing the child does (an early exit, a message on any descriptor it holds,
  patched builtins) reaches ``check`` except the values it returns.

Standard library only and nothing from ttc: it runs from ``-c`` under ``-I -S`` and is the same text in
both modes.
"""

import ctypes
import ctypes.util
import json
import os
import resource
import struct
import sys

CLONE_NEWUSER = 0x10000000
CLONE_NEWNET = 0x40000000
PR_SET_DUMPABLE = 4
DONE = b"program reached its end\n"
MAX_MESSAGE = 64 << 20  # bytes of one encoded call or result; more fails the call


def set_limits(memory: int, cpu: int, fsize: int, nproc: int, nofile: int) -> None:
    limits = [(resource.RLIMIT_AS, memory), (resource.RLIMIT_CPU, cpu), (resource.RLIMIT_FSIZE, fsize),
              (resource.RLIMIT_CORE, 0), (resource.RLIMIT_NOFILE, nofile)]
    if nproc > 0:
        limits.append((resource.RLIMIT_NPROC, nproc))
    for kind, value in limits:
        try:
            resource.setrlimit(kind, (value, value))
        except (ValueError, OSError):
            pass


def isolate_network() -> str:
    """The fallback's network isolation: a new network namespace if the kernel allows one, else a
    ``socket`` module that refuses (which stops accidents, not a determined program)."""
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or None, use_errno=True)
        if libc.unshare(CLONE_NEWNET) == 0:
            return "netns"
        if libc.unshare(CLONE_NEWUSER | CLONE_NEWNET) == 0:
            return "userns+netns"
    except (OSError, AttributeError):
        pass
    import socket

    def refused(*args, **kwargs):
        raise OSError("network access is disabled in the ttc sandbox")

    socket.socket = refused
    socket.create_connection = refused
    socket.socketpair = refused
    return "socket-guard"


def not_dumpable() -> None:
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or None, use_errno=True)
        libc.prctl(PR_SET_DUMPABLE, 0, 0, 0, 0)
    except (OSError, AttributeError):
        pass


def read_all(fd: int) -> bytes:
    chunks = []
    while True:
        chunk = os.read(fd, 1 << 16)
        if not chunk:
            return b"".join(chunks)
        chunks.append(chunk)


def read_exact(fd: int, n: int) -> bytes:
    buf = bytearray()
    while len(buf) < n:
        chunk = os.read(fd, min(n - len(buf), 1 << 20))
        if not chunk:
            raise EOFError("the solution's process closed its pipe")
        buf += chunk
    return bytes(buf)


def send(fd: int, message) -> None:
    data = json.dumps(message, separators=(",", ":")).encode()
    if len(data) > MAX_MESSAGE:
        data = json.dumps(["X", "ValueError", "the value is too large to cross the sandbox"]).encode()
    data = struct.pack("<I", len(data)) + data
    while data:
        data = data[os.write(fd, data):]


def receive(fd: int):
    (n,) = struct.unpack("<I", read_exact(fd, 4))
    if n > MAX_MESSAGE:
        raise ValueError(f"a message of {n} bytes from the solution's process (at most {MAX_MESSAGE})")
    return json.loads(read_exact(fd, n))


SCALARS = {type(None): "N", bool: "B", int: "I", float: "F", complex: "C", str: "S", bytes: "Y"}
CONTAINERS = {list: "L", tuple: "T", set: "E", frozenset: "Z"}


def encode(value):
    """Plain data as tagged JSON; exact types only (a subclass is not its base class here)."""
    t = type(value)
    tag = SCALARS.get(t) or CONTAINERS.get(t) or ("D" if t is dict else None)
    if tag is None:
        raise TypeError(f"a {t.__module__}.{t.__qualname__} cannot cross the sandbox (plain data only)")
    if tag == "N":
        return ["N"]
    if tag == "I":
        return ["I", hex(value)]  # hex has no digit limit, str has (sys.set_int_max_str_digits)
    if tag == "F":
        return ["F", float.hex(value)]
    if tag == "C":
        return ["C", float.hex(value.real), float.hex(value.imag)]
    if tag == "Y":
        return ["Y", value.hex()]
    if tag in ("B", "S"):
        return [tag, value]
    if tag == "D":
        return ["D", [[encode(k), encode(v)] for k, v in value.items()]]
    return [tag, [encode(v) for v in value]]


def decode(message):
    """The inverse of ``encode``, checking every tag and type; anything else raises ValueError."""
    if not isinstance(message, list) or not message or not isinstance(message[0], str):
        raise ValueError("malformed value from the solution's process")
    tag, rest = message[0], message[1:]
    if tag == "N" and not rest:
        return None
    if len(rest) == 1:
        v = rest[0]
        if tag == "B" and type(v) is bool:
            return v
        if tag == "S" and type(v) is str:
            return v
        if tag == "I" and type(v) is str:
            return int(v, 16)
        if tag == "F" and type(v) is str:
            return float.fromhex(v)
        if tag == "Y" and type(v) is str:
            return bytes.fromhex(v)
        if tag in ("L", "T", "E", "Z") and type(v) is list:
            items = [decode(x) for x in v]
            return {"L": list, "T": tuple, "E": set, "Z": frozenset}[tag](items)
        if tag == "D" and type(v) is list:
            out = {}
            for pair in v:
                if type(pair) is not list or len(pair) != 2:
                    raise ValueError("malformed dict from the solution's process")
                out[decode(pair[0])] = decode(pair[1])
            return out
    if tag == "C" and len(rest) == 2 and all(type(x) is str for x in rest):
        return complex(float.fromhex(rest[0]), float.fromhex(rest[1]))
    raise ValueError(f"malformed value (tag {tag!r}) from the solution's process")


def exec_as_main(source) -> dict:
    import types

    main = types.ModuleType("__main__")
    main.__dict__["__builtins__"] = __builtins__
    sys.modules["__main__"] = main
    sys.argv = ["program.py"]
    exec(compile(source, "program.py", "exec"), main.__dict__)
    return main.__dict__


def run_program(source: bytes, done_fd: int) -> None:
    """In the child (``run``): run the program, then tell the judge it reached its end."""
    exec_as_main(source)
    sys.stdout.flush()
    sys.stderr.flush()
    os.write(done_fd, DONE)
    os._exit(0)


def serve(job: dict, requests: int, results: int) -> None:
    """In the child (``judge``): run the solution, then answer calls until the judge closes the pipe."""
    namespace = exec_as_main(job["solution"])
    sys.stdout.flush()
    fn = namespace.get(job["entry_point"])
    while True:
        try:
            args, kwargs = receive(requests)
        except EOFError:
            sys.stdout.flush()
            os._exit(0)
        try:
            if not callable(fn):
                raise NameError(f"the solution defines no function {job['entry_point']!r}")
            reply = ["R", encode(fn(*decode(args), **decode(kwargs)))]
        except Exception as e:  # the judge raises it in the tests, as a call in one process would
            try:
                reply = ["X", type(e).__name__, str(e)[:2000]]
            except Exception:
                reply = ["X", "Exception", "an exception that cannot be shown"]
        sys.stdout.flush()
        send(results, reply)


def judge(job: dict, requests: int, results: int) -> bool:
    """In the judge (``judge``): run the tests against a proxy of the solution's function."""
    import builtins

    def candidate(*args, **kwargs):
        send(requests, [encode(list(args)), encode(kwargs)])
        reply = receive(results)
        if type(reply) is list and len(reply) == 2 and reply[0] == "R":
            return decode(reply[1])
        if type(reply) is list and len(reply) == 3 and reply[0] == "X" and all(type(x) is str for x in reply):
            kind = getattr(builtins, reply[1], None)
            if not (isinstance(kind, type) and issubclass(kind, Exception)):
                kind = RuntimeError
            raise kind(f"{reply[1]}: {reply[2]}" if kind is RuntimeError else reply[2])
        raise ValueError("malformed reply from the solution's process")

    namespace = {"__name__": "__ttc_tests__", "__builtins__": builtins}
    exec(compile(job["tests"], "tests.py", "exec"), namespace)
    namespace[job["entry_point"]] = candidate  # tests that name the function itself call the solution's too
    namespace["check"](candidate)
    return True


def child_exit(e: BaseException) -> None:
    """The child's exit for an exception out of the program: SystemExit's code, else 1 and the traceback."""
    if isinstance(e, SystemExit):
        code = e.code
        if code is not None and not isinstance(code, int):
            print(code, file=sys.stderr)
            code = 1
        sys.stdout.flush()
        os._exit(code or 0)
    import traceback

    sys.stdout.flush()
    traceback.print_exc()
    sys.stderr.flush()
    os._exit(1)


def main() -> None:
    mode, job_kind = sys.argv[1], sys.argv[2]
    memory, cpu, fsize, nproc, nofile, nonce_fd, verdict_fd = map(int, sys.argv[3:10])
    source = read_all(0)
    devnull = os.open("/dev/null", os.O_RDONLY)
    os.dup2(devnull, 0)
    os.close(devnull)
    isolation = "bwrap" if mode == "bwrap" else isolate_network()  # before the memory cap: ctypes needs room
    not_dumpable()
    os.write(verdict_fd, f"isolation={isolation}\n".encode())
    job = json.loads(source) if job_kind == "judge" else None
    set_limits(memory, cpu, fsize, nproc, nofile)
    mine, theirs = os.pipe()  # run: the done message; judge: calls to the solution
    results_r, results_w = os.pipe()
    pid = os.fork()
    if pid == 0:
        os.close(nonce_fd)
        os.close(verdict_fd)
        os.close(results_r)
        try:
            if job is None:
                os.close(mine)
                os.close(results_w)
                run_program(source, theirs)
            else:
                os.close(theirs)
                serve(job, mine, results_w)
        except BaseException as e:
            child_exit(e)
    os.close(results_w)
    if job is None:
        os.close(theirs)
        _, status = os.waitpid(pid, 0)
        os.set_blocking(mine, False)  # a process the program left running may hold the pipe open
        try:
            said = os.read(mine, len(DONE) + 1)
        except BlockingIOError:
            said = b""
        code = os.waitstatus_to_exitcode(status)
        passed = code == 0 and said == DONE
    else:
        os.close(mine)
        try:
            passed = judge(job, theirs, results_r)
            code = 0
        except BaseException:
            import traceback

            sys.stdout.flush()
            traceback.print_exc()
            passed, code = False, 1
    if passed:
        os.write(verdict_fd, read_all(nonce_fd))
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code if code >= 0 else 128 - code)


if __name__ == "__main__":
    main()
