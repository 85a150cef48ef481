"""Why a replica died, read from the exception a remote call raised: one cause per loss, counted in the header.

Every exception from a remote call is a possible replica death. Some prove one (the actor died, its node
died, Ray's memory monitor killed its worker); ``death_cause`` names it. Others prove nothing (the call
raised in a replica that may still be alive, a result lost in transit): ``death_cause`` returns None and
the driver asks the replica whether it is alive (``ttc.sweep.cluster``).

Causes, as Ray 2.x words them:

* ``oom``: Ray's memory monitor killed the worker (``OutOfMemoryError``, exit type ``NODE_OUT_OF_MEMORY``).
* ``node``: the replica's node died or was removed (``NodeDiedError``, "its node has died").
* ``preempted``: the worker or its node was told to stop (SIGTERM to the worker, a spot node drained).
* ``killed``: ``ray.kill`` by someone else (the driver's own kill of a replica past its deadline is ``hung``).
* ``hung``: the replica held problems and returned none for ``--replica-timeout`` seconds.
* ``crashed``: the worker process died otherwise (``kill -9``, a segfault, the kernel's OOM killer).
* ``unreachable``: the actor cannot be reached (``ActorUnavailableError``; with no restarts it stays so).
  A node killed outright often shows as this before Ray has marked the node dead.
"""

from __future__ import annotations

import re

CAUSES = ("oom", "node", "preempted", "killed", "hung", "crashed", "unreachable")

_ERROR_LINE = re.compile(r"^(?:[A-Za-z_][\w.]*\.)?([A-Z]\w*(?:Error|Exception)): (.+)$")


def death_cause(e: BaseException) -> str | None:
    """The cause of death that ``e`` proves, or None when it proves none (the replica may be alive)."""
    from ray import exceptions as rx

    text = str(e)
    if isinstance(e, rx.OutOfMemoryError) or "NODE_OUT_OF_MEMORY" in text or "running low on memory" in text:
        return "oom"
    if isinstance(e, rx.RayTaskError):  # the call raised in the replica: proves nothing about the replica
        return None
    if isinstance(e, rx.NodeDiedError) or re.search(r"node (has )?died|node .* (was )?removed|NODE_DIED", text):
        return "node"
    if isinstance(e, rx.ActorUnavailableError):
        return "unreachable"
    if isinstance(e, rx.RayActorError):
        if getattr(e, "_preempted", False) or "SIGTERM" in text:
            return "preempted"
        if "ray.kill" in text:
            return "killed"
        return "crashed"
    if isinstance(e, (rx.WorkerCrashedError, rx.LocalRayletDiedError)):
        return "crashed"
    return None


def detail(e: BaseException, limit: int = 300) -> str:
    """One line saying what happened: Ray's own reason for a dead actor (the line after its ids), else the
    innermost ``SomeError: message`` line (errors that carry a traceback as text), else the first line."""
    lines = [ln.strip() for ln in str(e).splitlines() if ln.strip()]
    if not lines:
        return type(e).__name__
    ids = [i for i, ln in enumerate(lines) if re.match(r"^(class_name|actor_id|pid|name|namespace|ip):", ln)]
    if ids and ids[-1] + 1 < len(lines):
        line = " ".join(lines[ids[-1] + 1:])
    else:
        errors = [m for m in map(_ERROR_LINE.match, lines) if m]
        line = f"{errors[-1].group(1)}: {errors[-1].group(2)}" if errors else lines[0]
    return line if len(line) <= limit else line[: limit - 3] + "..."


def chain_detail(e: BaseException, limit: int = 400) -> str:
    """``detail`` of an exception and of each exception it was raised from, joined: a join error keeps its
    cause (``ConnectionError: Failed to connect`` from ``AuthenticationError: token is missing``)."""
    parts, seen = [], set()
    while e is not None and id(e) not in seen:
        seen.add(id(e))
        part = detail(e, limit)
        if part not in parts:
            parts.append(part)
        e = e.__cause__ or e.__context__
    text = ": ".join(parts)
    return text if len(text) <= limit else text[: limit - 3] + "..."
