"""Where the archive lives: a URL or ``ObjectStoragePath`` resolved to a filesystem, and its atomic writes.

All file I/O of the export goes through :class:`Destination`, which talks to the fsspec
filesystem behind an Airflow ``ObjectStoragePath`` directly (one code path for every scheme):
exclusive creates (:meth:`Destination.create_exclusive`), files written whole or not at all
(:class:`AtomicWriter`, hashing what passes through with :class:`HashingWriter`), listing and
removal.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import threading
import uuid
from typing import IO, TYPE_CHECKING, Any

from airflow_provider_aigw.compat import ObjectStoragePath, storage_url
from airflow_provider_aigw.exceptions import AIGatewayError, AIGatewayInputError

if TYPE_CHECKING:
    from fsspec import AbstractFileSystem

#: What to install for the schemes Airflow does not know out of the box.
SCHEME_HINTS: dict[str, str] = {
    "s3": "pip install 'apache-airflow-providers-amazon[s3fs]'",
    "s3a": "pip install 'apache-airflow-providers-amazon[s3fs]'",
    "gs": "pip install 'apache-airflow-providers-google' gcsfs",
    "gcs": "pip install 'apache-airflow-providers-google' gcsfs",
    "abfs": "pip install 'apache-airflow-providers-microsoft-azure' adlfs",
    "abfss": "pip install 'apache-airflow-providers-microsoft-azure' adlfs",
    "az": "pip install 'apache-airflow-providers-microsoft-azure' adlfs",
    "adl": "pip install 'apache-airflow-providers-microsoft-azure' adlfs",
    "wasb": "pip install 'apache-airflow-providers-microsoft-azure' adlfs",
    "hdfs": "pip install 'apache-airflow-providers-apache-hdfs'",
    "webhdfs": "pip install 'apache-airflow-providers-apache-hdfs'",
    "sftp": "pip install 'apache-airflow-providers-sftp'",
    "ftp": "pip install 'apache-airflow-providers-ftp'",
}


def resolve_destination(
    destination: str | ObjectStoragePath, *, check_writable: bool = False
) -> ObjectStoragePath:
    """Turn ``destination`` into an ``ObjectStoragePath`` whose filesystem can be resolved.

    Cheap (no request to the store unless ``check_writable``) and meant to be called before
    anything is fetched, so a missing filesystem provider fails the task at once.

    :param destination: ``ObjectStoragePath`` or URL such as ``file:///data/aigw``,
        ``s3://aws_conn@bucket/prefix``, ``gs://bucket/prefix`` or ``memory://bucket/prefix``.
    :param check_writable: also write and delete a tiny hidden probe file under the destination.
    :raises AIGatewayInputError: empty or malformed destination, a scheme for which no
        filesystem is registered (the message names the provider/extra to install), or (with
        ``check_writable``) a destination that cannot be written.
    """
    dest = open_destination(destination)
    if check_writable:
        dest.check_writable("")
    if isinstance(destination, ObjectStoragePath):
        return destination
    return ObjectStoragePath(str(destination).strip())


def _to_path(destination: str | ObjectStoragePath) -> ObjectStoragePath:
    if isinstance(destination, ObjectStoragePath):
        return destination
    if not isinstance(destination, (str, os.PathLike)):
        raise AIGatewayInputError(
            f"destination must be a URL string or an ObjectStoragePath, got {type(destination).__name__}"
        )
    text = os.fspath(destination).strip()
    if not text:
        raise AIGatewayInputError("destination must not be empty")
    if "://" not in text:
        raise AIGatewayInputError(
            f"destination {text!r} has no scheme: use a URL such as 'file:///abs/path', "
            "'s3://conn_id@bucket/prefix' or 'gs://bucket/prefix'"
        )
    try:
        return ObjectStoragePath(text)
    except Exception as exc:  # malformed URL, unknown upath protocol, ...
        raise AIGatewayInputError(f"destination {text!r} is not a valid storage URL: {exc}") from exc


def _resolve_fs(path: ObjectStoragePath, shown: str) -> AbstractFileSystem:
    protocol = (path.protocol or "file").lower()
    try:
        return path.fs
    except ValueError as exc:
        if "No filesystem registered" not in str(exc):
            raise AIGatewayInputError(f"destination {shown!r}: {exc}") from exc
        if protocol == "memory":
            # Airflow registers only file:// itself; fsspec's in-process memory filesystem
            # needs no credentials, so fall back to it (used by tests and demos).
            import fsspec

            return fsspec.filesystem("memory")
        hint = SCHEME_HINTS.get(
            protocol, f"install the Airflow provider that registers the {protocol!r} scheme"
        )
        raise AIGatewayInputError(
            f"destination {shown!r}: no filesystem is registered for scheme {protocol!r} in this "
            f"Airflow installation; {hint}"
        ) from exc
    except ImportError as exc:
        hint = SCHEME_HINTS.get(protocol, "install the filesystem package for this scheme")
        raise AIGatewayInputError(
            f"destination {shown!r}: the filesystem for scheme {protocol!r} cannot be imported "
            f"({exc}); {hint}"
        ) from exc
    except AIGatewayError:
        raise
    except Exception as exc:  # connection lookup errors and the like
        raise AIGatewayInputError(
            f"destination {shown!r}: cannot set up the {protocol!r} filesystem: {type(exc).__name__}: {exc}"
        ) from exc


def open_destination(destination: str | ObjectStoragePath) -> Destination:
    """The :class:`Destination` of a URL or ``ObjectStoragePath`` (no request to the store).

    :raises AIGatewayInputError: as :func:`resolve_destination`.
    """
    path = _to_path(destination)
    shown = storage_url(path)
    fs = _resolve_fs(path, shown)
    return Destination(path, fs)


class HashingWriter:
    """Write-only file wrapper that counts bytes and computes sha256 of what passes through."""

    def __init__(self, raw: IO[bytes]) -> None:
        self._raw = raw
        self._sha = hashlib.sha256()
        self.bytes_written = 0
        self.closed = False

    def write(self, data: bytes | bytearray | memoryview) -> int:
        """Write ``data`` to the underlying file and update the digest."""
        self._sha.update(data)
        n = len(data)
        self.bytes_written += n
        self._raw.write(data)
        return n

    def tell(self) -> int:
        """Bytes written so far."""
        return self.bytes_written

    def flush(self) -> None:
        """Flush the underlying file."""
        self._raw.flush()

    def writable(self) -> bool:
        """Always ``True``."""
        return True

    def readable(self) -> bool:
        """Always ``False``."""
        return False

    def seekable(self) -> bool:
        """Always ``False`` (streams only go forward)."""
        return False

    def close(self) -> None:
        """Mark closed; the underlying file is closed by its owner."""
        self.closed = True

    @property
    def sha256(self) -> str:
        """Hex sha256 of everything written."""
        return self._sha.hexdigest()


class Destination:
    """An export root: the user's ``ObjectStoragePath`` plus its fsspec filesystem."""

    def __init__(self, path: ObjectStoragePath, fs: AbstractFileSystem) -> None:
        self.path = path
        self.fs = fs
        protocols = fs.protocol if isinstance(fs.protocol, (tuple, list)) else (fs.protocol,)
        self.protocols = {str(p) for p in protocols}
        #: local filesystems need directories and allow an atomic rename
        self.is_local = bool(self.protocols & {"file", "local"})
        self.needs_dirs = self.is_local or "memory" in self.protocols
        self.root = fs._strip_protocol(path.path).rstrip("/") or "/"
        self.uri_root = storage_url(path).rstrip("/")
        self._made_dirs: set[str] = set()

    # -- naming ---------------------------------------------------------------------------
    def full(self, rel: str) -> str:
        """Filesystem path of ``rel`` (relative to the root)."""
        return f"{self.root}/{rel}" if self.root != "/" else f"/{rel}"

    def uri(self, rel: str) -> str:
        """URL of ``rel`` as the user would write it (keeps the conn id)."""
        return f"{self.uri_root}/{rel}"

    @property
    def plain_root(self) -> str:
        """URL of the root without the Airflow connection id (``s3://bucket/prefix``)."""
        return strip_userinfo(self.uri_root)

    def plain_uri(self, rel: str) -> str:
        """URL of ``rel`` that readers outside Airflow can open (no connection id)."""
        return f"{self.plain_root}/{rel}"

    def norm(self, path: str) -> str:
        """Normalise a path the filesystem returned for comparisons."""
        return str(self.fs._strip_protocol(path)).rstrip("/")

    # -- operations -------------------------------------------------------------------------
    def makedirs(self, rel_dir: str) -> None:
        """Create ``rel_dir`` where the filesystem has real directories (no-op on object stores)."""
        if not self.needs_dirs or rel_dir in self._made_dirs:
            return
        self._wrap("create directory", rel_dir, lambda: self.fs.makedirs(self.full(rel_dir), exist_ok=True))
        self._made_dirs.add(rel_dir)

    def exists(self, rel: str) -> bool:
        """Whether ``rel`` exists."""
        return bool(self._wrap("check", rel, lambda: self.fs.exists(self.full(rel))))

    def remove(self, rel: str) -> None:
        """Delete the file ``rel`` if present."""
        full = self.full(rel)

        def _rm() -> None:
            with contextlib.suppress(FileNotFoundError):
                self.fs.rm_file(full)

        self._wrap("delete", rel, _rm)

    def remove_full(self, full: str) -> None:
        """Delete a file given by its filesystem path (as listed by :meth:`find`)."""

        def _rm() -> None:
            with contextlib.suppress(FileNotFoundError):
                self.fs.rm_file(full)

        self._wrap("delete", full, _rm)

    def prune_empty_dirs(self, full: str, stop_rel: str) -> None:
        """Remove now-empty parent directories of ``full`` up to (excluding) ``stop_rel``.

        Only where directories are real (local, memory); best effort.
        """
        if not self.needs_dirs:
            return
        stop = self.norm(self.full(stop_rel))
        parent = self.norm(full).rsplit("/", 1)[0]
        while parent.startswith(stop + "/"):
            try:
                if self.fs.ls(parent, detail=False):
                    return
                self.fs.rmdir(parent)
            except Exception:
                return
            self._made_dirs.clear()
            parent = parent.rsplit("/", 1)[0]

    def find(self, rel_dir: str) -> list[str]:
        """All files below ``rel_dir`` (filesystem paths), empty when it does not exist."""
        full = self.full(rel_dir)

        def _find() -> list[str]:
            try:
                return [str(p) for p in self.fs.find(full)]
            except FileNotFoundError:
                return []

        result: list[str] = self._wrap("list", rel_dir, _find)
        return result

    def listdir(self, rel_dir: str) -> list[str]:
        """Files directly in ``rel_dir`` (filesystem paths), empty when it does not exist."""
        full = self.full(rel_dir)

        def _ls() -> list[str]:
            try:
                entries = self.fs.ls(full, detail=True)
            except FileNotFoundError:
                return []
            return [str(e["name"]) for e in entries if e.get("type") != "directory"]

        self.fs.invalidate_cache(full)
        result: list[str] = self._wrap("list", rel_dir, _ls)
        return result

    def read_bytes_or_none(self, rel: str) -> bytes | None:
        """Whole content of ``rel``, ``None`` when it does not exist."""

        def _cat() -> bytes | None:
            try:
                data: bytes = self.fs.cat_file(self.full(rel))
            except FileNotFoundError:
                return None
            return data

        result: bytes | None = self._wrap("read", rel, _cat)
        return result

    def create_exclusive(self, rel: str, data: bytes) -> bool:
        """Create ``rel`` holding ``data`` only if it does not exist; ``False`` when it does.

        Atomic where the store has a conditional create: ``O_EXCL`` on local filesystems and
        ``If-None-Match: *`` on S3 (s3fs mode ``xb``); on ``memory://`` a process-wide lock.
        """
        head = rel.rpartition("/")[0]
        if head:
            self.makedirs(head)
        full = self.full(rel)

        def _create() -> bool:
            try:
                with self.fs.open(full, "xb") as f:
                    f.write(data)
            except FileExistsError:
                return False
            return True

        if "memory" in self.protocols:
            with _MEMORY_CREATE_LOCK:
                return bool(self._wrap("create", rel, _create))
        return bool(self._wrap("create", rel, _create))

    def read_bytes(self, rel: str) -> bytes:
        """Whole content of ``rel``."""
        data: bytes = self._wrap("read", rel, lambda: self.fs.cat_file(self.full(rel)))
        return data

    def write_bytes(self, rel: str, data: bytes) -> None:
        """Write a small file in one go (atomically via rename on local filesystems)."""
        with self.open_writer(rel) as f:
            f.write(data)

    def check_writable(self, rel_dir: str) -> None:
        """Write and delete a tiny probe file under ``rel_dir``; raise a clear error if that fails."""
        name = f".aigw-probe-{uuid.uuid4().hex}"
        probe = f"{rel_dir}/{name}" if rel_dir else name
        try:
            if self.needs_dirs:
                self.fs.makedirs(self.full(rel_dir) if rel_dir else self.root, exist_ok=True)
                self._made_dirs.add(rel_dir)
            with self.fs.open(self.full(probe), "wb") as f:
                f.write(b"")
            with contextlib.suppress(FileNotFoundError):
                self.fs.rm_file(self.full(probe))
        except Exception as exc:
            raise AIGatewayInputError(
                f"destination {self.uri_root!r} is not writable "
                f"(probe {self.uri(probe)!r} failed: {type(exc).__name__}: {exc})"
            ) from exc

    def open_writer(self, rel: str) -> AtomicWriter:
        """Open ``rel`` for streaming writes, published whole or not at all; see :class:`AtomicWriter`."""
        return AtomicWriter(self, rel)

    def _wrap(self, what: str, rel: str, fn: Any) -> Any:
        try:
            return fn()
        except AIGatewayError:
            raise
        except Exception as exc:
            raise AIGatewayError(
                f"cannot {what} {rel!r} under destination {self.uri_root!r}: {type(exc).__name__}: {exc}"
            ) from exc


class AtomicWriter:
    """One file of the destination, written whole or not at all.

    Creating it opens the file; :meth:`commit` publishes it and :meth:`abort` discards it. As a
    context manager it gives the :class:`HashingWriter` to write to, commits when the block ends
    and aborts when the block raises::

        with dest.open_writer("gateway=gw/_manifests/x.json") as f:
            f.write(data)

    On local filesystems the data goes to a hidden temp name in the same directory and is
    renamed into place by :meth:`commit`. On object stores the object only becomes visible when
    the upload is completed on close; :meth:`abort` discards the upload where the filesystem
    supports it and removes any partial object. Either way the manifest, written last, is the
    commit point of an export.

    :param dest: the destination.
    :param rel: path of the file, relative to the destination's root.
    :raises AIGatewayError: the file cannot be opened.
    """

    def __init__(self, dest: Destination, rel: str) -> None:
        self.dest = dest
        self.rel = rel
        self.final = dest.full(rel)
        head, _, name = rel.rpartition("/")
        tmp_rel = f"{head}/.{name}.tmp" if head else f".{name}.tmp"
        self.target = dest.full(tmp_rel) if dest.is_local else self.final
        if head:
            dest.makedirs(head)
        try:
            self._raw: Any = dest.fs.open(self.target, "wb")
        except Exception as exc:
            raise AIGatewayError(
                f"cannot open {dest.uri(rel)!r} for writing: {type(exc).__name__}: {exc}"
            ) from exc
        #: Where the data goes: counts bytes and hashes them on the way.
        self.file = HashingWriter(self._raw)

    def commit(self) -> None:
        """Close the file and publish it under its final name (the file is aborted if that fails)."""
        try:
            self._raw.close()
            if self.target != self.final:
                self.dest.fs.mv(self.target, self.final)
        except Exception as err:
            self.abort()
            raise AIGatewayError(f"cannot write {self.dest.uri(self.rel)!r}: {type(err).__name__}: {err}") from err

    def abort(self) -> None:
        """Discard the file: nothing is published (best effort, never raises)."""
        discard = getattr(self._raw, "discard", None)
        with contextlib.suppress(Exception):
            if callable(discard):
                discard()
            else:
                self._raw.close()
        with contextlib.suppress(Exception):
            self.dest.fs.rm_file(self.target)

    def __enter__(self) -> HashingWriter:
        return self.file

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: Any) -> None:
        if exc_type is None:
            self.commit()
        else:
            self.abort()


#: Serialises exclusive creates on ``memory://`` (one process, and no atomic create there).
_MEMORY_CREATE_LOCK = threading.Lock()


def strip_userinfo(url: str) -> str:
    """``url`` without the ``user@`` of its authority and without a trailing ``/``.

    Neither is part of the data's name: ``s3://aws_conn@bucket/prefix/`` and ``s3://bucket/prefix``
    name the same objects (the connection id only says how to reach them), so assets, manifest
    roots and log lines use the second form. The root of an empty authority keeps its slash
    (``file:///``). A string without ``://`` is returned as it is.
    """
    scheme, sep, rest = url.partition("://")
    if not sep:
        return url
    authority, _, path = rest.partition("/")
    host = authority.rpartition("@")[2]
    path = path.rstrip("/")
    if path:
        return f"{scheme}://{host}/{path}"
    return f"{scheme}://{host}" if host else f"{scheme}:///"
