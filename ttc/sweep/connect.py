"""Reaching the Ray cluster of ``--ray``: a private one (``local``), the running one (``auto``), or an address.

* ``--ray local`` starts a private cluster for this sweep: ``ray.init(address="local")`` with its own temp
  dir. It never joins the cluster named by ``RAY_ADDRESS`` or by the last ``ray start`` on this machine
  (``/tmp/ray/ray_current_cluster``), and it is stopped, its temp dir removed, when the sweep ends, fails,
  or is stopped (Ctrl-C, SIGTERM).
* ``--ray`` with no value (``auto``) joins ``RAY_ADDRESS`` when that is set, else the cluster of the last
  ``ray start`` on this machine, else a Ray head process found running here: what ``ray.init()`` joins.
* anything else is the address of a head node: ``host:port`` (the GCS port of ``ray start --head``), or
  ``ray://host:10001`` for Ray Client.

Joining never hangs. The address is probed first (a TCP connect, a few seconds), so a stale
``ray_current_cluster`` file or a dead ``RAY_ADDRESS`` is an ``error:`` at once; then ``ray.init`` runs in
a helper thread that the main thread waits for with a deadline (``TTC_RAY_CONNECT_TIMEOUT`` seconds,
default 120), so Ctrl-C and SIGTERM stop the wait too. A failed join keeps Ray's cause (a cluster that
needs token authentication says so).
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import tempfile
import threading
import time
from dataclasses import dataclass

from ttc.errors import TTCError
from ttc.sweep.deaths import chain_detail
from ttc.sweep.replica import project_env

INIT_KWARGS = dict(include_dashboard=False, log_to_driver=True, logging_level="WARNING")
PROBE_TIMEOUT = 5.0


@dataclass
class Session:
    """What ``connect`` did: whether this process started Ray (and must stop it), and the private cluster's
    temp dir (removed by ``disconnect``)."""

    owned: bool
    temp_dir: str | None = None


def connect(address: str) -> Session:
    """Join (or, for ``local``, start) the cluster of ``--ray address``."""
    import ray

    if ray.is_initialized():  # a cluster the caller already joined (tests, notebooks)
        return Session(owned=False)
    if address == "local":
        return start_private()
    target, where = resolve(address)
    if target is None:
        raise TTCError("--ray: no running Ray cluster on this machine; start one with `ray start --head` "
                       "(or join one with `ray start --address HEAD:6379`), or use --ray local")
    probe(target, where, address)
    join(address, where)
    return Session(owned=True)


def start_private() -> Session:
    """A private cluster on this machine, in its own temp dir, whatever ``RAY_ADDRESS`` says. Started from
    the main thread: Ray's processes die with the thread that started them."""
    import ray

    base = tempfile.gettempdir()
    base = base if len(base) < 40 else "/tmp"  # Ray's socket paths are short
    remove_stale(base)
    temp = tempfile.mkdtemp(prefix=f"ttc-ray-{os.getpid()}-", dir=base)
    saved = os.environ.pop("RAY_ADDRESS", None)  # the cluster's processes and replicas must not see it
    try:
        ray.init(address="local", _temp_dir=temp, runtime_env=project_env(), **INIT_KWARGS)
    except BaseException as e:
        shutil.rmtree(temp, ignore_errors=True)
        if isinstance(e, Exception):
            raise TTCError(f"--ray local: could not start a private Ray cluster ({chain_detail(e)})") from None
        raise
    finally:
        if saved is not None:
            os.environ["RAY_ADDRESS"] = saved
    return Session(owned=True, temp_dir=temp)


def remove_stale(base: str) -> None:
    """Remove the temp dirs of private clusters whose driver is gone (``kill -9`` leaves them): the names
    ``ttc-ray-<pid>-*`` that ``start_private`` gives, whose pid no longer runs."""
    import glob

    for path in glob.glob(os.path.join(base, "ttc-ray-*-*")):
        pid = os.path.basename(path).split("-")[2]
        if not pid.isdigit():
            continue
        try:
            os.kill(int(pid), 0)
        except ProcessLookupError:
            shutil.rmtree(path, ignore_errors=True)
        except OSError:  # alive, another user's
            pass


def disconnect(session: Session) -> None:
    """Leave the cluster; stop it and remove its temp dir if ``connect`` started it."""
    if not session.owned:
        return
    import ray

    ray.shutdown()
    if session.temp_dir:
        shutil.rmtree(session.temp_dir, ignore_errors=True)


def resolve(address: str) -> tuple[str | None, str]:
    """The address ``ray.init(address)`` would join and where it comes from (for messages); None when
    ``auto`` finds no cluster."""
    if address != "auto":
        return address, f"--ray {address}"
    env = os.environ.get("RAY_ADDRESS", "")
    if env:
        return env, f"RAY_ADDRESS={env}"
    from ray._private import services, utils

    recorded = utils.read_ray_address(None)
    if recorded:
        return recorded, f"the cluster of the last `ray start` ({utils.get_ray_address_file(None)}: {recorded})"
    running = sorted(services.find_gcs_addresses())
    if running:
        return running[0], f"a Ray head process running here ({running[0]})"
    return None, ""


def probe(target: str, where: str, address: str) -> None:
    """A TCP connect to the head's port: a dead address is an ``error:`` in seconds, not a 10-minute hang."""
    hostport = target.split("://", 1)[-1].split("/", 1)[0]
    host, _, port = hostport.rpartition(":")
    if not host or not port.isdigit():
        raise TTCError(f"{where}: not a Ray address (host:port or ray://host:port)")
    try:
        socket.create_connection((host.strip("[]"), int(port)), timeout=PROBE_TIMEOUT).close()
    except OSError as e:
        why = "no answer within 5 s" if isinstance(e, socket.timeout) else (e.strerror or str(e) or type(e).__name__)
        if address == "auto" and not os.environ.get("RAY_ADDRESS"):
            raise TTCError(f"--ray: no running Ray cluster on this machine: {where} does not answer ({why}); "
                           f"start one with `ray start --head` (or join one with `ray start --address "
                           f"HEAD:6379`), or use --ray local") from None
        fix = "unset RAY_ADDRESS or start that cluster" if where.startswith("RAY_ADDRESS") else \
            "check the head node is up and the port is its GCS port (ray start --head prints it)"
        raise TTCError(f"{where}: cannot join that Ray cluster (nothing answers at {hostport}: {why}); {fix}, "
                       f"or use --ray local for a private cluster") from None


def join(address: str, where: str) -> None:
    """``ray.init(address)`` in a helper thread, waited for by this one with a deadline (signals reach this
    thread between waits: Ctrl-C and SIGTERM stop the wait). A driver joining starts no Ray processes, so
    the helper thread may end before the session does."""
    import ray

    timeout = float(os.environ.get("TTC_RAY_CONNECT_TIMEOUT") or 120)
    env = project_env()
    box: dict = {}

    def target():
        try:
            ray.init(address=address, runtime_env=env, **INIT_KWARGS)
        except BaseException as e:  # noqa: BLE001 - handed to the waiting thread
            box["error"] = e

    helper = threading.Thread(target=target, name="ttc-ray-join", daemon=True)
    helper.start()
    deadline = time.monotonic() + timeout
    while helper.is_alive():
        helper.join(0.1)
        if helper.is_alive() and time.monotonic() > deadline:
            raise TTCError(f"{where}: the Ray cluster did not accept this driver within {timeout:g} s (set "
                           f"TTC_RAY_CONNECT_TIMEOUT to wait longer), or use --ray local")
    if "error" in box:
        e = box["error"]
        if not isinstance(e, Exception):
            raise e
        text = chain_detail(e)
        auth = ("the cluster uses token authentication: give this driver its token (RAY_AUTH_MODE=token and "
                "RAY_AUTH_TOKEN, or ~/.ray/auth_token); ") if "AuthenticationError" in text or \
            "InvalidAuthToken" in text else ""
        raise TTCError(f"{where}: cannot join that Ray cluster ({auth}{text})") from None


class Stopped(KeyboardInterrupt):
    """SIGTERM while a sweep runs on a cluster: stops it as Ctrl-C does (replicas and a private cluster go)."""


def _raise_stopped(signum, frame):
    raise Stopped()


class SigtermStops:
    """While a sweep runs on a cluster, SIGTERM raises ``Stopped`` in the main thread, as Ctrl-C raises
    ``KeyboardInterrupt``, so the ``finally`` blocks stop the replicas and a private cluster. ``arm`` again
    after starting a private cluster (``ray.init`` installs its own handler); the handler found on entry is
    put back on exit."""

    def __enter__(self) -> "SigtermStops":
        self.main = threading.current_thread() is threading.main_thread()
        self.previous = signal.getsignal(signal.SIGTERM) if self.main else None
        self.arm()
        return self

    def arm(self) -> None:
        if self.main:
            signal.signal(signal.SIGTERM, _raise_stopped)

    def __exit__(self, *exc) -> None:
        if self.main:
            signal.signal(signal.SIGTERM, self.previous if self.previous is not None else signal.SIG_DFL)
