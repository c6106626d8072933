"""One writer per output root at a time: a lease file, ROOT/_LEASE.json, created exclusively and kept alive.

A run that writes to a root (curate, match, count, balance, report) holds the lease for its whole length: it
names the owner (a random run token, host, pid, command) and carries a heartbeat the owner rewrites every
`root.lease_heartbeat_seconds`. A second run finds the file and stops at once with RootBusyError (exit 75,
"try again later"), or waits up to `root.lease_wait_seconds` for it. A lease whose heartbeat is older than
`root.lease_timeout_seconds` belongs to a run that died without releasing it (lost its node): the next run takes
it over; so does a run on the same machine as a holder whose process is gone (a driver killed with -9), at once.
Because only the holder writes, leftovers of a killed run's temporary tables can be cleared by the next holder
without touching a live run's files.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import logging
import os
import socket
import threading
import time
import uuid

from pyspark.sql import SparkSession

from .config import RootSettings
from .errors import RootBusyError
from .tables import (child_names, create_exclusively, delete_path, join_path, path_exists, read_json,
                     write_json_atomically)

log = logging.getLogger("metaclip_spark")

LEASE_FILE = "_LEASE.json"


def _now() -> dt.datetime:
    return dt.datetime.now(dt.timezone.utc)


def _dead_here(lease: dict) -> bool:
    """The holder ran on this machine and its process is gone (a driver killed with -9): no need to wait."""
    if lease.get("host") != socket.gethostname() or not isinstance(lease.get("pid"), int):
        return False
    try:
        os.kill(lease["pid"], 0)
    except ProcessLookupError:
        return True
    except PermissionError:
        return False  # alive, another user's
    return False


def _age_seconds(lease: dict) -> float:
    try:
        beat = dt.datetime.fromisoformat(lease["heartbeat_at"])
    except (KeyError, TypeError, ValueError):
        return float("inf")  # unreadable: treat as abandoned
    return (_now() - beat).total_seconds()


class RootLease:
    """The lease of one root for one run; use `with root_lease(...)`."""

    def __init__(self, spark: SparkSession, root: str, settings: RootSettings, command: str):
        self.spark = spark
        self.path = join_path(root, LEASE_FILE)
        self.root = root
        self.settings = settings
        self.token = uuid.uuid4().hex
        self.owner = {"token": self.token, "host": socket.gethostname(), "pid": os.getpid(), "command": command}
        self._stop = threading.Event()
        self._made_root = False
        self._beat: threading.Thread | None = None

    def _record(self, acquired_at: str) -> dict:
        return dict(self.owner, acquired_at=acquired_at, heartbeat_at=_now().isoformat(timespec="milliseconds"))

    def acquire(self) -> "RootLease":
        deadline = time.monotonic() + self.settings.lease_wait_seconds
        self._made_root = not path_exists(self.spark, self.root)  # then a run that writes nothing leaves nothing
        acquired_at = _now().isoformat(timespec="seconds")
        while True:
            if create_exclusively(self.spark, self.path, self._record(acquired_at)):
                break
            held = read_json(self.spark, self.path)
            if held is None:
                continue  # released between our two looks: try again
            age = _age_seconds(held)
            if age > self.settings.lease_timeout_seconds or _dead_here(held):
                log.warning("root %s: taking over the lease of %s pid %s (%s), silent for %.0f s or gone", self.root,
                            held.get("host"), held.get("pid"), held.get("command"), age)
                delete_path(self.spark, self.path)
                continue
            if time.monotonic() >= deadline:
                raise RootBusyError(
                    f"{self.root} is busy: {held.get('command')} by {held.get('host')} pid {held.get('pid')} since "
                    f"{held.get('acquired_at')} (alive {age:.0f} s ago); try again when it ends")
            time.sleep(min(5.0, max(0.2, deadline - time.monotonic())))
        self._beat = threading.Thread(target=self._heartbeat, args=(acquired_at,), daemon=True,
                                      name="metaclip-spark-lease")
        self._beat.start()
        return self

    def _heartbeat(self, acquired_at: str) -> None:
        while not self._stop.wait(self.settings.lease_heartbeat_seconds):
            try:
                held = read_json(self.spark, self.path)
                if not held or held.get("token") != self.token:
                    log.error("root %s: lost the lease (now held by %s pid %s); this run's writes may conflict",
                              self.root, (held or {}).get("host"), (held or {}).get("pid"))
                    return
                write_json_atomically(self.spark, self.path, self._record(acquired_at))
            except Exception as e:  # noqa: BLE001 - a missed beat is retried at the next one
                log.warning("root %s: lease heartbeat failed: %s", self.root, e)

    def release(self) -> None:
        self._stop.set()
        if self._beat is not None:
            self._beat.join(timeout=30)
        held = read_json(self.spark, self.path)
        if held and held.get("token") == self.token:
            delete_path(self.spark, self.path)
            if self._made_root and child_names(self.spark, self.root) == []:
                delete_path(self.spark, self.root)


@contextlib.contextmanager
def root_lease(spark: SparkSession, root: str, settings: RootSettings, command: str):
    lease = RootLease(spark, root, settings, command).acquire()
    try:
        yield lease
    finally:
        lease.release()
