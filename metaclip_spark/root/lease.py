"""One writer per output root, proven: generations of a lease in ROOT/_LEASE/, each taken by an exclusive create.

A run that writes to a root (curate, match, count, balance, report) holds the lease for its whole length. The lease
is a series of files `ROOT/_LEASE/<generation>.json`; the run that created the highest generation holds it.

- Taking it: no generation yet (the last holder released it: deleted them all), or the highest one silent or dead ->
  create generation + 1 *exclusively*.
  That create is the compare-and-swap: of any number of runs taking over one stale lease, exactly one creates the
  next generation; the others find it there and wait or stop (RootBusyError, exit 75). On each store:
  a local (or shared, POSIX) disk: the record is written whole to a temporary file, then `os.link`ed to its name,
  which fails if the name exists (so a full disk cannot leave an empty lease either); HDFS and other Hadoop file
  systems: `FileSystem.create(path, overwrite=false)`, atomic at the HDFS NameNode (`gs://`, `abfs://`: as their
  connectors make it, untested here); S3 (`s3://`, `s3a://` roots): a PUT with `If-None-Match: *` through s3fs
  (tested against moto's S3 server), since Hadoop's S3A `create(overwrite=false)` is a look, then a PUT.
- Keeping it: the holder renews its generation's modification time every `root.lease_heartbeat_seconds` (a touch
  on local disks and HDFS; a rewrite on object stores), after checking that it still holds it (below). Liveness is
  that time, as the store keeps it: a record that cannot be read (0 bytes, garbage) is judged by it too, and is
  stale after the timeout.
- Releasing it: the holder deletes every generation up to its own (its own last), and the empty `_LEASE/`.
- Judging a holder: silent for `root.lease_timeout_seconds`, or - without waiting - dead on this very
  machine: same host, same boot (`/proc/sys/kernel/random/boot_id`), same PID namespace, and its pid gone or reused
  (another start time). A pid alone proves nothing: a run in a container with host networking shares the host name
  and has a pid of another namespace.
- The fence: before every change under the root (root/tables.py calls `check` at each commit, rename, delete and write)
  the holder proves it still holds the lease: no later generation exists, its own record is still there with its
  token, and its last confirmed heartbeat is more recent than `timeout - heartbeat` (so nobody can have judged it
  silent). A run paused past the timeout (SIGSTOP,
  a VM frozen, a stalled GC) stops at its next change with LeaseLostError (exit 75), having written nothing more.
  What remains is the gap between that check and the change it guards: a pause inside it is not caught (file
  systems offer no conditional rename to close it).
"""

from __future__ import annotations

import contextlib
import datetime as dt
import json
import logging
import os
import socket
import threading
import time
import uuid

from metaclip_spark.root import tables
from metaclip_spark.config import RemoteSettings, RootSettings
from metaclip_spark.errors import LeaseLostError, RootBusyError, is_out_of_space

log = logging.getLogger("metaclip_spark")

LEASE_FILE = "_LEASE"  # the directory of the lease's generations, in the root
_DIGITS = 12


def _now() -> float:
    return time.time()


def _read_text(path: str) -> str | None:
    try:
        with open(path, encoding="utf-8") as f:
            return f.read().strip() or None
    except OSError:
        return None


def _start_time(pid: int) -> str | None:
    """The start time of process `pid` in clock ticks since boot (field 22 of /proc/PID/stat), or None."""
    text = _read_text(f"/proc/{pid}/stat")
    if text is None:
        return None
    return text.rsplit(")", 1)[1].split()[19]  # after the command name, which may hold spaces


def process_identity() -> dict:
    """What lets another run on this machine prove this process dead: host, boot, PID namespace, pid, start time."""
    try:
        namespace = os.readlink("/proc/self/ns/pid")
    except OSError:
        namespace = None
    return {"host": socket.gethostname(), "boot_id": _read_text("/proc/sys/kernel/random/boot_id"),
            "pid_namespace": namespace, "pid": os.getpid(), "started": _start_time(os.getpid())}


def dead_here(record: dict) -> bool:
    """The holder ran on this machine, in this boot and PID namespace, and its process is gone (a driver killed
    with -9) or its pid now belongs to a process started later: no need to wait for the timeout."""
    mine = process_identity()
    if any(record.get(key) is None or record.get(key) != mine[key] for key in ("host", "boot_id", "pid_namespace")):
        return False
    pid = record.get("pid")
    if not isinstance(pid, int) or pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    except PermissionError:
        pass  # alive, another user's
    started = _start_time(pid)
    return record.get("started") is not None and started is not None and started != record["started"]


# Where the generations live --------------------------------------------------------------------------------------
class _LocalStore:
    """A directory on a local or shared POSIX file system."""

    def __init__(self, directory: str):
        self.directory = directory

    def _path(self, name: str) -> str:
        return os.path.join(self.directory, name)

    def names(self) -> list[str]:
        try:
            return os.listdir(self.directory)
        except FileNotFoundError:
            return []

    def create(self, name: str, data: bytes) -> bool:
        """Create `name` holding `data` unless it exists: written whole beside it, then linked (link never
        replaces)."""
        temporary = self._path(f".{name}.tmp-{uuid.uuid4().hex[:12]}")
        for attempt in range(3):  # the directory may be removed by a holder releasing the lease just then
            os.makedirs(self.directory, exist_ok=True)
            try:
                return self._link(temporary, name, data)
            except FileNotFoundError:
                if attempt == 2:
                    raise
        return False

    def _link(self, temporary: str, name: str, data: bytes) -> bool:
        try:
            with open(temporary, "wb") as f:
                f.write(data)
                f.flush()
                os.fsync(f.fileno())
            try:
                os.link(temporary, self._path(name))
            except FileExistsError:
                return False
            return True
        finally:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(temporary)

    def replace(self, name: str, data: bytes) -> None:
        temporary = self._path(f".{name}.tmp-{uuid.uuid4().hex[:12]}")
        with open(temporary, "wb") as f:
            f.write(data)
        os.replace(temporary, self._path(name))

    def touch(self, name: str, data: bytes) -> None:
        os.utime(self._path(name))  # FileNotFoundError when it was deleted: not ours any more

    def read(self, name: str) -> tuple[bytes, float] | None:
        """(content, modification time in seconds since the epoch), or None when it does not exist."""
        try:
            with open(self._path(name), "rb") as f:
                return f.read(), os.fstat(f.fileno()).st_mtime
        except FileNotFoundError:
            return None

    def delete(self, name: str) -> None:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(self._path(name))

    def remove_if_empty(self) -> None:
        with contextlib.suppress(OSError):  # not empty (another run's generation) or gone
            os.rmdir(self.directory)


class _HadoopStore:
    """A directory through Spark's Hadoop file systems (hdfs://, gs://, abfs://, ...)."""

    def __init__(self, spark, directory: str):
        self.spark, self.directory = spark, directory
        jvm = spark.sparkContext._jvm
        self._Path = jvm.org.apache.hadoop.fs.Path
        self.fs = self._Path(directory).getFileSystem(spark.sparkContext._jsc.hadoopConfiguration())

    def _path(self, name: str):
        return self._Path(f"{self.directory}/{name}")

    def names(self) -> list[str]:
        directory = self._Path(self.directory)
        if not self.fs.exists(directory):
            return []
        return [str(s.getPath().getName()) for s in self.fs.listStatus(directory)]

    def _write(self, name: str, data: bytes, overwrite: bool) -> None:
        stream = self.fs.create(self._path(name), overwrite)
        try:
            stream.write(bytearray(data))
        finally:
            stream.close()

    def create(self, name: str, data: bytes) -> bool:
        try:
            self._write(name, data, False)
        except Exception as e:  # noqa: BLE001 - Py4J wraps Hadoop's FileAlreadyExistsException
            if "FileAlreadyExists" in str(e) or "already exists" in str(e):
                return False
            raise
        return True

    def replace(self, name: str, data: bytes) -> None:
        self._write(name, data, True)

    def touch(self, name: str, data: bytes) -> None:
        if str(self.fs.getScheme()) in ("hdfs", "viewfs", "webhdfs"):
            # in place: HDFS's create(overwrite) deletes first, and a taker seeing no record could take the lease
            self.fs.setTimes(self._path(name), int(_now() * 1000), -1)
        else:
            self._write(name, data, True)  # an object store keeps no settable time: write the record again

    def read(self, name: str) -> tuple[bytes, float] | None:
        path = self._path(name)
        try:
            status = self.fs.getFileStatus(path)
            stream = self.fs.open(path)
        except Exception as e:  # noqa: BLE001 - FileNotFoundException through Py4J
            if "FileNotFound" in str(e) or "No such file" in str(e):
                return None
            raise
        try:
            data = self.spark.sparkContext._jvm.org.apache.commons.io.IOUtils.toByteArray(stream)
        finally:
            stream.close()
        return bytes(data), status.getModificationTime() / 1000

    def delete(self, name: str) -> None:
        self.fs.delete(self._path(name), False)

    def remove_if_empty(self) -> None:
        directory = self._Path(self.directory)
        if self.fs.exists(directory) and not list(self.fs.listStatus(directory)):
            self.fs.delete(directory, False)


class _S3Store:
    """A prefix in an S3 bucket, through s3fs: the exclusive create is a conditional PUT (If-None-Match: *)."""

    def __init__(self, directory: str, remote: RemoteSettings):
        from metaclip_spark.storage import filesystem

        self.fs, self.directory = filesystem(directory, remote)
        self.directory = self.directory.rstrip("/")

    def _path(self, name: str) -> str:
        return f"{self.directory}/{name}"

    def names(self) -> list[str]:
        self.fs.invalidate_cache(self.directory)
        try:
            return [p.rstrip("/").rsplit("/", 1)[-1] for p in self.fs.ls(self.directory, detail=False, refresh=True)]
        except FileNotFoundError:
            return []

    def create(self, name: str, data: bytes) -> bool:
        try:
            self.fs.pipe_file(self._path(name), data, mode="create")
        except FileExistsError:
            return False
        except OSError as e:  # s3fs may report the 412 as a plain OSError
            if "PreconditionFailed" in str(e) or "412" in str(e):
                return False
            raise
        return True

    def replace(self, name: str, data: bytes) -> None:
        self.fs.pipe_file(self._path(name), data)

    def touch(self, name: str, data: bytes) -> None:
        if not self.fs.exists(self._path(name)):
            raise FileNotFoundError(self._path(name))
        self.fs.pipe_file(self._path(name), data)  # an object's time is only renewed by writing it again

    def read(self, name: str) -> tuple[bytes, float] | None:
        path = self._path(name)
        self.fs.invalidate_cache(path)
        try:
            info = self.fs.info(path)
            data = self.fs.cat_file(path)
        except FileNotFoundError:
            return None
        modified = info.get("LastModified") or info.get("last_modified")
        return data, modified.timestamp() if isinstance(modified, dt.datetime) else _now()

    def delete(self, name: str) -> None:
        with contextlib.suppress(FileNotFoundError):
            self.fs.rm_file(self._path(name))

    def remove_if_empty(self) -> None:
        pass  # an object store has no directories: the prefix is gone with its last object


def lease_store(spark, root: str, remote: RemoteSettings | None = None):
    """Where `root`'s lease lives, by the root's scheme (see the module doc for each one's exclusive create)."""
    from metaclip_spark.storage import check_readable, default_settings, is_local, local_path, protocol

    directory = tables.join_path(root, LEASE_FILE)
    if is_local(root) or root.startswith("file:"):
        return _LocalStore(tables._local(directory) or local_path(directory))
    if protocol(root) == "s3":
        check_readable(root)  # no s3fs: exit 2 naming the package, before any work
        return _S3Store(directory, remote or default_settings())
    return _HadoopStore(spark, directory)


def _generation(name: str) -> int | None:
    stem = name.removesuffix(".json")
    return int(stem) if name.endswith(".json") and len(stem) == _DIGITS and stem.isdigit() else None


def _name(generation: int) -> str:
    return f"{generation:0{_DIGITS}d}.json"


def _parse(data: bytes) -> dict:
    try:
        record = json.loads(data.decode("utf-8"))
    except (UnicodeDecodeError, ValueError):
        return {}
    return record if isinstance(record, dict) else {}


class RootLease:
    """The lease of one root for one run; use `with root_lease(...)`."""

    def __init__(self, spark, root: str, settings: RootSettings, command: str, remote: RemoteSettings | None = None,
                 store=None):
        self.spark = spark
        self.root = root
        self.settings = settings
        self.store = store or lease_store(spark, root, remote)
        self.token = uuid.uuid4().hex
        self.owner = dict(process_identity(), token=self.token, command=command)
        self.generation: int | None = None
        self._acquired_at = ""
        self.lost: str | None = None  # why this run can no longer prove it holds the lease
        self._confirmed = 0.0  # time.monotonic() of the last heartbeat made after checking no later generation
        self._stop = threading.Event()
        self._made_root = False
        self._beat: threading.Thread | None = None

    # The generations -------------------------------------------------------------------------------------------
    def _latest(self) -> int:
        return max((g for g in map(_generation, self.store.names()) if g is not None), default=0)

    def _record(self) -> bytes:
        record = dict(self.owner, generation=self.generation, acquired_at=self._acquired_at)
        return (json.dumps(record, indent=2, sort_keys=True) + "\n").encode("utf-8")

    def _judge(self, generation: int) -> tuple[bool, dict, float] | None:
        """(can be taken over now, the holder's record, seconds since its last heartbeat), or None when the record
        is gone (released between the listing and the read)."""
        found = self.store.read(_name(generation))
        if found is None:
            return None
        record, age = _parse(found[0]), max(0.0, _now() - found[1])
        return age > self.settings.lease_timeout_seconds or dead_here(record), record, age

    def acquire(self) -> "RootLease":
        deadline = time.monotonic() + self.settings.lease_wait_seconds
        self._made_root = not self._root_exists()  # then a run that writes nothing leaves nothing
        self._acquired_at = dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds")
        while True:
            latest = self._latest()
            judged = self._judge(latest) if latest else (True, {}, 0.0)
            if judged is None:
                continue  # released between two looks
            takeable, held, age = judged
            if takeable:
                self.generation = latest + 1
                if self.store.create(_name(self.generation), self._record()) and self._latest() == self.generation:
                    if latest:
                        log.warning("root %s: took over the lease of %s pid %s (%s), silent for %.0f s or gone",
                                    self.root, held.get("host"), held.get("pid"), held.get("command"), age)
                    break
                continue  # another run took it first: judge the new holder
            if time.monotonic() >= deadline:
                who = (f"{held.get('command')} by {held.get('host')} pid {held.get('pid')} since "
                       f"{held.get('acquired_at')}" if held else f"a run whose lease record {_name(latest)} cannot "
                       "be read")
                raise RootBusyError(f"{self.root} is busy: {who} (alive {age:.0f} s ago); try again when it ends")
            time.sleep(min(5.0, max(0.2, deadline - time.monotonic())))
        self._confirmed = time.monotonic()
        self._beat = threading.Thread(target=self._heartbeat, daemon=True, name="metaclip-spark-lease")
        self._beat.start()
        tables.add_fence(self.root, self.check)
        return self

    def _delete_root_if_empty(self) -> None:
        """A root this run created and left empty (it wrote nothing: a refused input) is removed again."""
        if isinstance(self.store, _LocalStore):
            with contextlib.suppress(OSError):
                os.rmdir(os.path.dirname(self.store.directory))
        elif self.spark is not None and tables.child_names(self.spark, self.root) == []:
            tables.delete_path(self.spark, self.root)

    def _root_exists(self) -> bool:
        if isinstance(self.store, _LocalStore):
            return os.path.exists(os.path.dirname(self.store.directory))
        return tables.path_exists(self.spark, self.root) if self.spark is not None else True

    # Keeping it ------------------------------------------------------------------------------------------------
    def _not_held(self) -> str | None:
        """Why this run no longer holds the lease (a later generation, or its own record gone or another's), or
        None."""
        latest = self._latest()
        if latest > self.generation:
            found = self.store.read(_name(latest))
            held = _parse(found[0]) if found else {}
            return f"another run ({held.get('command')} by {held.get('host')} pid {held.get('pid')}) took it over"
        found = self.store.read(_name(self.generation))
        if found is None or _parse(found[0]).get("token") != self.token:
            return "its lease record was deleted or replaced (another run took it over and finished)"
        return None

    def _heartbeat(self) -> None:
        while not self._stop.wait(self.settings.lease_heartbeat_seconds):
            started = time.monotonic()
            try:
                self.lost = self.lost or self._not_held()
                if self.lost:
                    log.error("root %s: lost the lease: %s; this run stops before its next write", self.root,
                              self.lost)
                    return
                self.store.touch(_name(self.generation), self._record())
                self._confirmed = started
            except Exception as e:  # noqa: BLE001 - a missed beat is retried at the next one
                log.warning("root %s: lease heartbeat failed: %s", self.root, e)

    def check(self) -> None:
        """The fence, before every change under the root: raise LeaseLostError unless this run can prove it still
        holds the lease."""
        silent = time.monotonic() - self._confirmed
        self.lost = self.lost or self._not_held()
        if not self.lost and silent >= self.settings.lease_timeout_seconds - self.settings.lease_heartbeat_seconds:
            self.lost = (f"this run was silent for {silent:.0f} s (paused, or its heartbeat failed), so another run "
                         "may have taken it over")
        if self.lost:
            raise LeaseLostError(f"lost the lease of {self.root}: {self.lost}; stopped before writing more. Nothing "
                                 "this run committed is lost: run the same command again when the root is free")

    def release(self) -> None:
        tables.remove_fence(self.root)
        self._stop.set()
        if self._beat is not None:
            self._beat.join(timeout=30)
        if self.generation is None or self.lost or self._not_held():
            return
        # Earlier generations (a taken-over holder's, a loser's leftover) first, ours last: a run that took the lease
        # after ours was released may start again at generation 1, and a holder paused all along finds its own
        # record gone or another's (check).
        for generation in sorted(g for g in map(_generation, self.store.names()) if g is not None):
            if generation <= self.generation:
                self.store.delete(_name(generation))
        self.store.remove_if_empty()
        if self._made_root:
            self._delete_root_if_empty()


@contextlib.contextmanager
def root_lease(spark, root: str, settings: RootSettings, command: str, remote: RemoteSettings | None = None):
    lease = RootLease(spark, root, settings, command, remote).acquire()
    try:
        yield lease
    except LeaseLostError:
        raise
    except Exception as e:
        # A run that lost the lease may fail in odd ways (the new holder cleared its temporary tables): say why.
        if lease.lost and not is_out_of_space(e):
            raise LeaseLostError(f"lost the lease of {root}: {lease.lost}; stopped ({type(e).__name__}). Run the "
                                 "same command again when the root is free") from e
        raise
    finally:
        lease.release()
