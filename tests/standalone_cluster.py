"""A real Spark standalone cluster on 127.0.0.1 for tests: one master and N workers, from the pyspark package alone.

The daemons are the classes pyspark ships (`spark-class org.apache.spark.deploy.master.Master` / `...Worker`);
`sbin/start-master.sh` is not part of the pip package. Every process started here gets its own session (process
group) and is stopped by `stop()` together with its descendants (executors and their Python workers), so a
failing test leaves nothing running.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import pyspark

SPARK_HOME = Path(pyspark.__file__).resolve().parent
HOST = "127.0.0.1"
# The daemons' and executors' JVMs compile with the JIT's first tier only, as the drivers do (tests/conftest.py:
# SPARK_SUBMIT_OPTS): the tests' jobs are tiny, and the optimizing tier costs more CPU than it saves.
JIT_OPTIONS = "-XX:TieredStopAtLevel=1"


def free_port() -> int:
    """A TCP port nobody listens on right now (the kernel's choice), on the loopback interface."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((HOST, 0))
        return s.getsockname()[1]


def get_json(url: str, timeout: float = 5.0):
    """A JSON document from a Spark web UI, or None while it does not answer."""
    try:
        with urllib.request.urlopen(url, timeout=timeout) as response:
            return json.loads(response.read().decode("utf-8"))
    except (urllib.error.URLError, ConnectionError, TimeoutError, json.JSONDecodeError, OSError):
        return None


def _children_by_parent() -> dict[int, list[int]]:
    children: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            stat = Path(f"/proc/{entry}/stat").read_text()
        except OSError:
            continue
        # The command name (field 2) may hold spaces and parentheses: the parent pid follows the last ')'.
        parent = int(stat.rsplit(")", 1)[1].split()[1])
        children.setdefault(parent, []).append(int(entry))
    return children


def descendants(pid: int) -> list[int]:
    """Every live process below `pid` (children, grandchildren, ...)."""
    tree = _children_by_parent()
    found, todo = [], [pid]
    while todo:
        for child in tree.get(todo.pop(), []):
            found.append(child)
            todo.append(child)
    return found


def command_line(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode("utf-8", "replace")
    except OSError:
        return ""


def kill_tree(process: subprocess.Popen, grace: float = 5.0) -> None:
    """Stop a process started with start_new_session=True, its process group and every descendant."""
    if process.poll() is not None and not descendants(process.pid):
        return
    pids = [process.pid, *descendants(process.pid)]
    for sig in (signal.SIGTERM, signal.SIGKILL):
        try:
            os.killpg(process.pid, sig)
        except ProcessLookupError:
            pass
        for pid in pids:
            try:
                os.kill(pid, sig)
            except ProcessLookupError:
                pass
        try:
            process.wait(timeout=grace)
        except subprocess.TimeoutExpired:
            continue
        if not any(Path(f"/proc/{pid}").exists() for pid in pids[1:]):
            break
        time.sleep(0.5)
    if process.poll() is None:
        process.wait(timeout=grace)


def spark_env(python: str, conf_dir: Path, extra: dict | None = None) -> dict:
    """The environment of the daemons and of spark-submit: loopback only, this Python, no user Spark conf."""
    env = dict(os.environ)
    for key in ("PYSPARK_GATEWAY_PORT", "PYSPARK_GATEWAY_SECRET", "SPARK_CONF_DIR", "SPARK_MASTER"):
        env.pop(key, None)
    env.update(
        SPARK_HOME=str(SPARK_HOME),
        SPARK_CONF_DIR=str(conf_dir),
        SPARK_LOCAL_IP=HOST,
        SPARK_LOCAL_HOSTNAME=HOST,
        SPARK_DAEMON_MEMORY="256m",
        SPARK_DAEMON_JAVA_OPTS=JIT_OPTIONS,
        PYSPARK_PYTHON=python,
        PYSPARK_DRIVER_PYTHON=python,
    )
    env.update(extra or {})
    return env


class StandaloneCluster:
    """One master and `workers` workers (each `cores` cores, `memory` memory), all on 127.0.0.1."""

    def __init__(self, workdir: Path, workers: int = 2, cores: int = 1, memory: str = "1g",
                 python: str = sys.executable):
        self.workdir = Path(workdir)
        self.workers_wanted = workers
        self.cores = cores
        self.memory = memory
        self.python = python
        self.conf_dir = self.workdir / "spark-conf"  # its own: no spark-defaults.conf from the user's machine
        self.master_port = free_port()
        self.master_webui_port = free_port()
        self.master_url = f"spark://{HOST}:{self.master_port}"
        self.master_webui = f"http://{HOST}:{self.master_webui_port}"
        self.master: subprocess.Popen | None = None
        self.workers: list[subprocess.Popen] = []
        self.worker_ports: list[int] = []
        self.killed: set[int] = set()  # workers kill_worker stopped, launched again by relaunch_killed()
        self.others: list[subprocess.Popen] = []
        self.retired: list[subprocess.Popen] = []  # killed workers' processes, stopped again with the rest
        self.logs: list[Path] = []

    @property
    def env(self) -> dict:
        return spark_env(self.python, self.conf_dir)

    def _spawn(self, name: str, argv: list[str], env: dict | None = None, cwd: Path | None = None) -> subprocess.Popen:
        log_path = self.workdir / "logs" / f"{name}.log"
        log_path.parent.mkdir(parents=True, exist_ok=True)
        self.logs.append(log_path)
        with open(log_path, "wb") as log:
            return subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
                                    env=env or self.env, cwd=cwd or self.workdir, start_new_session=True)

    def start(self, timeout: float = 300.0) -> "StandaloneCluster":
        """Launch the daemons and wait until every worker has registered with the master."""
        self.launch()
        return self.wait_ready(timeout)

    def launch(self) -> "StandaloneCluster":
        """Launch the master and the workers without waiting (the JVMs boot while the caller does other work)."""
        if self.master is not None:
            return self
        self.conf_dir.mkdir(parents=True, exist_ok=True)
        (self.conf_dir / "spark-defaults.conf").write_text(f"spark.executor.extraJavaOptions {JIT_OPTIONS}\n")
        spark_class = str(SPARK_HOME / "bin" / "spark-class")
        self.master = self._spawn("master", [
            spark_class, "org.apache.spark.deploy.master.Master",
            "--host", HOST, "--port", str(self.master_port), "--webui-port", str(self.master_webui_port),
        ])
        for index in range(self.workers_wanted):
            self.workers.append(None)
            self.worker_ports.append(0)
            self._launch_worker(index)
        return self

    def _launch_worker(self, index: int) -> None:
        work_dir = self.workdir / f"worker-{index}"
        work_dir.mkdir(parents=True, exist_ok=True)
        self.worker_ports[index] = free_port()
        again = sum(1 for name in self.logs if name.stem.startswith(f"worker-{index}"))  # a relaunch: a log of its own
        self.workers[index] = self._spawn(f"worker-{index}" + (f"-again-{again}" if again else ""), [
            str(SPARK_HOME / "bin" / "spark-class"), "org.apache.spark.deploy.worker.Worker",
            "--cores", str(self.cores), "--memory", self.memory, "--host", HOST,
            "--port", str(self.worker_ports[index]), "--webui-port", str(free_port()), "--work-dir", str(work_dir),
            self.master_url,
        ])

    def relaunch_killed(self) -> "StandaloneCluster":
        """Launch again, without waiting, the workers kill_worker killed: a lost node back, for the next test."""
        for index in sorted(self.killed):
            self.retired.append(self.workers[index])
            self._launch_worker(index)
        self.killed.clear()
        return self

    def wait_ready(self, timeout: float = 300.0) -> "StandaloneCluster":
        """Wait until every worker runs and has registered with the master. Workers an earlier test killed on
        purpose are launched again first, so each test gets the whole cluster; any other daemon that exited is an
        error (its log is shown)."""
        self.relaunch_killed()
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for process in [self.master, *self.workers]:
                if process.poll() is not None:
                    raise RuntimeError(f"a Spark daemon exited with {process.returncode}:\n{self.log_tail()}")
            # By port: the master lists a killed worker as ALIVE until it notices, and as DEAD after.
            alive = {w.get("port") for w in self.alive_workers()}
            if all(port in alive for port in self.worker_ports):
                return self
            time.sleep(0.5)
        raise TimeoutError(f"{self.workers_wanted} workers did not register within {timeout:.0f} s:\n{self.log_tail()}")

    def state(self) -> dict | None:
        """The master's JSON view: workers, active and completed applications."""
        return get_json(f"{self.master_webui}/json/")

    def alive_workers(self) -> list[dict]:
        state = self.state() or {}
        return [w for w in state.get("workers", []) if w.get("state") == "ALIVE"]

    def submit(self, args: list[str], name: str, env: dict | None = None, cwd: Path | None = None) -> subprocess.Popen:
        """`spark-submit --master spark://... ARGS` in the background; its output goes to logs/NAME.log."""
        process = self._spawn(name, [str(SPARK_HOME / "bin" / "spark-submit"), "--master", self.master_url, *args],
                              env=env, cwd=cwd)
        self.others.append(process)
        return process

    def kill_worker(self, index: int) -> list[int]:
        """Kill one worker the hard way (SIGKILL to its JVM, its executors and their Python workers), as a lost node."""
        worker = self.workers[index]
        pids = [worker.pid, *descendants(worker.pid)]
        for pid in pids:
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        worker.wait(timeout=30)
        self.killed.add(index)
        return pids

    def executor_ids(self, index: int) -> list[str]:
        """Ids of the executors worker `index` runs now (from their command lines: `--executor-id N`)."""
        ids = []
        for pid in descendants(self.workers[index].pid):
            argv = command_line(pid).split()
            if "org.apache.spark.executor.CoarseGrainedExecutorBackend" in argv and "--executor-id" in argv:
                ids.append(argv[argv.index("--executor-id") + 1])
        return ids

    def log_tail(self, lines: int = 40) -> str:
        parts = []
        for path in self.logs:
            try:
                text = path.read_text(errors="replace").splitlines()[-lines:]
            except OSError:
                continue
            parts.append(f"--- {path.name} ---\n" + "\n".join(text))
        return "\n".join(parts)

    def stop(self) -> None:
        for process in [*self.others, *self.retired, *reversed(self.workers), *([self.master] if self.master else [])]:
            kill_tree(process)

    def __enter__(self) -> "StandaloneCluster":
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()
