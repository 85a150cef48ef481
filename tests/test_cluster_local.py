"""Reaching Ray from the command line, each sweep in its own process under a timeout: ``--ray local`` is private
whatever RAY_ADDRESS and a stale ``ray_current_cluster`` file say, a dead address is an error in seconds, a
replica killed by Ray's memory monitor is replaced, SIGTERM and Ctrl-C stop the driver and its private
cluster, and a cluster of several nodes (token authentication, nodes without this checkout) runs a sweep
and survives losing a node."""

import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

ray = pytest.importorskip("ray")

from ttc import load_run  # noqa: E402

pytestmark = pytest.mark.ray
HERE = Path(__file__).parent
ROOT = HERE.parent
SCRIPT = str(HERE / "cluster_script.py")


def clean_env(**extra) -> dict:
    """This process's environment without Ray's settings, with this checkout importable and no hub."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("RAY_")}
    return {**env, "PYTHONPATH": str(ROOT), "HF_HUB_OFFLINE": "1", **extra}


def dead_address() -> str:
    """An address where nothing listens (a port just freed)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return f"127.0.0.1:{s.getsockname()[1]}"


def stale_session(tmp_path: Path) -> Path:
    """A Ray temp dir (for RAY_TMPDIR) whose ``ray_current_cluster`` names a cluster that is gone."""
    (tmp_path / "raytmp" / "ray").mkdir(parents=True)
    (tmp_path / "raytmp" / "ray" / "ray_current_cluster").write_text(dead_address())
    return tmp_path / "raytmp"


def run(argv: list, env: dict, timeout: float, cwd=None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, *argv], env=env, cwd=cwd, capture_output=True, text=True,
                          timeout=timeout)


def errors(proc) -> str:
    return "\n".join(ln for ln in proc.stderr.splitlines() if ln.startswith(("error:", "interrupted")))


def test_death_causes_read_from_rays_exceptions():
    from ray import exceptions as rx

    from ttc.sweep.deaths import death_cause, detail

    def died(reason: str):
        return rx.RayActorError(error_msg="The actor died unexpectedly before finishing this task.\n"
                                          "\tclass_name: Worker\n\tactor_id: ab12\n\tpid: 7\n" + reason)

    sigterm = died("The actor is dead because its worker process has died. Worker exit type: SYSTEM_ERROR Worker "
                   "exit detail: Worker exits unexpectedly by a signal. SystemExit is raised (sys.exit is called). "
                   "Exit code: 1. The process receives a SIGTERM.")
    kill9 = died("The actor is dead because its worker process has died. Worker exit type: SYSTEM_ERROR Worker "
                 "exit detail: Worker unexpectedly exits with a connection error code 2. End of file. Some common "
                 "causes include: (1) the process was killed by the OOM killer due to high memory usage")
    assert death_cause(sigterm) == "preempted" and death_cause(kill9) == "crashed"
    assert detail(sigterm).startswith("The actor is dead because its worker process has died.")
    assert death_cause(died("The actor is dead because it was killed by `ray.kill`.")) == "killed"
    assert death_cause(died("The actor died because its node has died. Node Id: 21a9")) == "node"
    assert death_cause(rx.RayActorError(preempted=True)) == "preempted"
    assert death_cause(rx.OutOfMemoryError("1 worker(s) were killed due to the node running low on memory.")) == "oom"
    assert death_cause(rx.NodeDiedError("node 21a9 died")) == "node"
    assert death_cause(rx.ActorUnavailableError("connection lost", None)) == "unreachable"
    # what proves no death: the call raised inside a replica, or anything that is not Ray's
    assert death_cause(rx.RayTaskError("solve", "Traceback ...", ValueError("bad"))) is None
    assert death_cause(ValueError("bad")) is None


def test_a_join_error_keeps_its_cause():
    from ttc.sweep.deaths import chain_detail

    try:
        try:
            raise RuntimeError("Failed to connect to GCS. Last connection error: Traceback (most recent call last):\n"
                               '  File "python/ray/includes/common.pxi", line 119, in ray._raylet.check_status\n'
                               "ray.exceptions.AuthenticationError: RPC error: InvalidAuthToken: Authentication "
                               "token is missing or incorrect.")
        except RuntimeError as e:
            raise ConnectionError("Failed to connect to Ray cluster at 10.0.0.1:6379") from e
    except ConnectionError as e:
        text = chain_detail(e)
    assert text == ("Failed to connect to Ray cluster at 10.0.0.1:6379: AuthenticationError: RPC error: "
                    "InvalidAuthToken: Authentication token is missing or incorrect.")


def test_a_private_clusters_temp_dir_left_by_a_killed_driver_is_removed_by_the_next(tmp_path):
    from ttc.sweep.connect import remove_stale

    gone = subprocess.Popen([sys.executable, "-c", "pass"])
    gone.wait()  # its pid runs no more
    for name in (f"ttc-ray-{gone.pid}-ab12", f"ttc-ray-{os.getpid()}-cd34", "ttc-ray-test-ef56", "other"):
        (tmp_path / name / "session_x").mkdir(parents=True)
    remove_stale(str(tmp_path))
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted([f"ttc-ray-{os.getpid()}-cd34", "ttc-ray-test-ef56",
                                                                 "other"])


def test_no_running_cluster_is_a_clear_error_even_with_a_stale_session_file(tmp_path):
    """``--ray`` (auto) with no RAY_ADDRESS and a ``ray_current_cluster`` file naming a dead cluster: an
    error in seconds, not Ray's retries for minutes; nothing written."""
    t0 = time.monotonic()
    proc = run(["-m", "ttc.run", "--ray", "--limit", "2", "--out", str(tmp_path / "out"), "--no-progress"],
               clean_env(RAY_TMPDIR=str(stale_session(tmp_path))), timeout=90)
    assert proc.returncode == 2, proc.stderr[-2000:]
    assert errors(proc).startswith("error: --ray: no running Ray cluster on this machine: the cluster of the last "
                                   "`ray start`")
    assert "does not answer" in errors(proc) and time.monotonic() - t0 < 60
    assert not (tmp_path / "out").exists()


def test_a_dead_ray_address_is_a_clear_error(tmp_path):
    address = dead_address()
    proc = run(["-m", "ttc.run", "--ray", "--limit", "2", "--out", str(tmp_path / "out"), "--no-progress"],
               clean_env(RAY_ADDRESS=address, RAY_TMPDIR=str(stale_session(tmp_path))), timeout=90)
    assert proc.returncode == 2, proc.stderr[-2000:]
    assert errors(proc).startswith(f"error: RAY_ADDRESS={address}: cannot join that Ray cluster (nothing answers")
    assert "--ray local" in errors(proc) and not (tmp_path / "out").exists()


def test_ray_local_is_private_whatever_ray_address_and_a_stale_session_say(tmp_path, tiny_model_dir):
    """The command line with ``--ray local``, a dead RAY_ADDRESS and a stale session file: a private cluster
    in its own temp dir runs the sweep; the stale file is left as it was, and the temp dir is removed."""
    raytmp = stale_session(tmp_path)
    stale = (raytmp / "ray" / "ray_current_cluster").read_text()
    tmpdir = Path(__import__("tempfile").mkdtemp(prefix="t", dir="/tmp"))  # short: Ray's socket paths
    try:
        proc = run(["-m", "ttc.run", "--model", tiny_model_dir, "--task", "chain_sum", "--limit", "3", "--budget",
                    "1,2", "--max-tokens", "8", "--ray", "local", "--replicas", "1", "--out", str(tmp_path / "out"),
                    "--no-progress"],
                   clean_env(RAY_ADDRESS=dead_address(), RAY_TMPDIR=str(raytmp), TMPDIR=str(tmpdir)), timeout=300)
        assert proc.returncode == 0, proc.stderr[-3000:]
        (run_dir,) = (tmp_path / "out").iterdir()
        df = load_run(run_dir)
        assert df["problem_id"].nunique() == 3 and len(df) == 6
        assert json.loads((run_dir / "header.json").read_text())["cluster"]["replicas"] == {tiny_model_dir: 1}
        assert (raytmp / "ray" / "ray_current_cluster").read_text() == stale
        assert sorted(p.name for p in (raytmp / "ray").iterdir()) == ["ray_current_cluster"]
        assert list(tmpdir.iterdir()) == []  # the private cluster's temp dir is gone
    finally:
        import shutil

        shutil.rmtree(tmpdir, ignore_errors=True)


def memory_threshold(extra_gib: float) -> float | None:
    """A fraction of this machine's memory ``extra_gib`` above what is in use now (Ray's memory monitor kills a
    worker past it); None when the machine has too little memory free for the test."""
    psutil = pytest.importorskip("psutil")
    mem = psutil.virtual_memory()
    if mem.available < 3 * extra_gib * 2**30:
        return None
    return (mem.total - mem.available + extra_gib * 2**30) / mem.total


def test_a_replica_killed_by_rays_memory_monitor_is_replaced(tmp_path):
    """Ray's memory threshold set just above what is in use; the replica's first call touches twice that
    margin, so the memory monitor kills its worker; a new replica takes its problems; every record once."""
    # The margin covers what Ray's own processes and the replica's worker take once the cluster is up (1.5 GiB
    # was too little on a fresh machine: the replicas died while loading, before the first call).
    threshold = memory_threshold(4)
    if threshold is None:
        pytest.skip("too little free memory to push the node past a threshold safely")
    (tmp_path / "m").mkdir()
    proc = run([SCRIPT, str(tmp_path / "out"), "--ray", "local", "--mode", "oom", "--marker", str(tmp_path / "m"),
                "--gb", "8", "--limit", "6"],
               clean_env(RAY_memory_usage_threshold=f"{threshold:.4f}", RAY_memory_monitor_refresh_ms="100"),
               timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    (run_dir,) = (tmp_path / "out").iterdir()
    df = load_run(run_dir)
    assert not df.duplicated(["problem_id", "sample_index"]).any() and df["problem_id"].nunique() == 6
    assert len(df) == 6 * 4
    h = json.loads((run_dir / "header.json").read_text())["cluster"]
    assert h["lost_by_cause"].get("oom", 0) >= 1 and h["retries_by_cause"].get("oom", 0) >= 1, h
    assert h["failed"] == []


def descendants(pid: int) -> list[int]:
    psutil = pytest.importorskip("psutil")
    return [p.pid for p in psutil.Process(pid).children(recursive=True)]


def alive(pids: list[int]) -> list[int]:
    psutil = pytest.importorskip("psutil")
    return [p for p in pids if psutil.pid_exists(p) and psutil.Process(p).status() != psutil.STATUS_ZOMBIE]


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT])
def test_sigterm_and_ctrl_c_stop_the_driver_and_its_private_cluster(tmp_path, sig):
    out = tmp_path / "out"
    proc = subprocess.Popen([sys.executable, SCRIPT, str(out), "--ray", "local", "--replicas", "2", "--delay", "0.3",
                             "--limit", "200"], env=clean_env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True)
    try:
        deadline = time.monotonic() + 240
        while time.monotonic() < deadline and proc.poll() is None:  # until problems are being stored
            runs = list(out.iterdir()) if out.exists() else []
            if runs and len(list((runs[0] / "records").rglob("*"))) >= 2:
                break
            time.sleep(0.2)
        assert proc.poll() is None, proc.communicate()[1][-3000:]
        cluster = descendants(proc.pid)
        assert len(cluster) >= 3  # Ray's processes and the replicas
        t0 = time.monotonic()
        proc.send_signal(sig)
        _, err = proc.communicate(timeout=60)
        stopped = time.monotonic() - t0
        for _ in range(100):  # what the private cluster ran goes with it
            if not alive(cluster):
                break
            time.sleep(0.1)
        assert proc.returncode == 130, err[-3000:]
        assert "interrupted: finished problems are saved" in err
        assert stopped < 30 and not alive(cluster), (stopped, alive(cluster))
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()


class Node:
    """``ray start ... --block`` in its own process group and directory; ``kill`` ends the group (the node's
    raylet and workers)."""

    def __init__(self, args: list, env: dict, cwd: Path, log: Path):
        cwd.mkdir(parents=True, exist_ok=True)
        self.log = log
        with open(log, "w") as f:
            self.proc = subprocess.Popen([str(Path(sys.executable).with_name("ray")), "start", "--block", *args],
                                         env=env, cwd=cwd, stdout=f, stderr=subprocess.STDOUT,
                                         start_new_session=True)

    def wait_started(self, timeout: float = 120) -> None:
        deadline = time.monotonic() + timeout
        while "Ray runtime started" not in self.log.read_text():
            assert self.proc.poll() is None and time.monotonic() < deadline, self.log.read_text()[-3000:]
            time.sleep(0.2)

    def kill(self, sig=signal.SIGKILL) -> None:
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, sig)
        self.proc.wait(timeout=60)


def test_several_nodes_token_auth_shipped_code_and_a_lost_node(tmp_path):
    """A head node and a worker node, each with one CPU, started in other directories with no path to this
    checkout, on a cluster with token authentication. A driver without the token gets an error that says so;
    with it, the sweep's two replicas run with the code the driver shipped (they refuse to start otherwise),
    and when the worker node is killed mid-sweep its replica's problems go to the head's: every record once."""
    import shutil
    import tempfile

    ray_exe = Path(sys.executable).with_name("ray")
    if not ray_exe.exists():
        pytest.skip("no `ray` command next to this Python")
    token = {"RAY_AUTH_MODE": "token", "RAY_AUTH_TOKEN": "0123456789abcdef0123456789abcdef"}
    node_env = {**{k: v for k, v in clean_env().items() if k != "PYTHONPATH"}, **token}
    temp = tempfile.mkdtemp(prefix="ttc-ray-nodes-", dir="/tmp")
    address = dead_address()
    head = Node(["--head", "--port", address.rsplit(":", 1)[1], "--num-cpus", "1", "--include-dashboard", "false",
                 "--temp-dir", temp], node_env, tmp_path / "head", tmp_path / "head.log")
    nodes = []
    try:
        head.wait_started()
        nodes = [Node(["--address", address, "--num-cpus", "1"], node_env, tmp_path / "node", tmp_path / "node.log")]
        nodes[0].wait_started()

        proc = run(["-m", "ttc.run", "--ray", address, "--limit", "2", "--out", str(tmp_path / "refused"),
                    "--no-progress"], clean_env(RAY_NUM_REDIS_GET_RETRIES="2", HOME=str(tmp_path)), timeout=120)
        assert proc.returncode == 2 and "the cluster uses token authentication" in errors(proc), proc.stderr[-3000:]
        assert "InvalidAuthToken" in errors(proc) and not (tmp_path / "refused").exists()

        out = tmp_path / "out"
        (tmp_path / "driver").mkdir()
        driver = subprocess.Popen([sys.executable, SCRIPT, str(out), "--ray", address, "--mode", "shipped",
                                   "--replicas", "2", "--delay", "0.3", "--limit", "16"],
                                  env=clean_env(**token), cwd=tmp_path / "driver", stdout=subprocess.PIPE,
                                  stderr=subprocess.PIPE, text=True)
        try:
            deadline = time.monotonic() + 240
            while driver.poll() is None and time.monotonic() < deadline:
                runs = list(out.iterdir()) if out.exists() else []
                if runs and (runs[0] / "header.json").exists() and \
                        load_run(runs[0], columns=["problem_id"])["problem_id"].nunique() >= 3:
                    break
                time.sleep(0.2)
            nodes[0].kill()  # its raylet, and the replica on it (the other replica runs on the head node)
            _, err = driver.communicate(timeout=300)
        finally:
            if driver.poll() is None:
                driver.kill()
                driver.communicate()
        assert driver.returncode == 0, err[-3000:]
        (run_dir,) = out.iterdir()
        df = load_run(run_dir)
        assert not df.duplicated(["problem_id", "sample_index"]).any() and df["problem_id"].nunique() == 16
        h = json.loads((run_dir / "header.json").read_text())["cluster"]
        # as Ray words it: the node's death, the worker's, or (seen here) a replica no longer reachable
        assert h["workers_lost"] == 1 and set(h["lost_by_cause"]) <= {"node", "crashed", "unreachable"}, h
    finally:
        for node in [*nodes, head]:
            node.kill()
        shutil.rmtree(temp, ignore_errors=True)
