"""Object store in a folder on this machine's disk."""

import errno
import glob
import os
import tempfile
import time
from collections.abc import Iterable, Iterator
from contextlib import contextmanager, suppress
from datetime import timedelta
from pathlib import Path
from typing import BinaryIO

from arrayq.storage.errors import NotFound, StorageFull, StorageUnavailable

_READ_CHUNK = 1 << 20
TEMP_PREFIX = ".tmp-"
_FULL_ERRNOS = frozenset({errno.ENOSPC, errno.EDQUOT})


class LocalStore:
    """Objects are files under `root`; a write goes to a temporary file that is
    renamed into place, so a reader never sees half an object."""

    def __init__(self, root: Path, *, min_free_bytes: int = 0) -> None:
        self.root = root.resolve()
        self.root.mkdir(parents=True, exist_ok=True)
        self.min_free_bytes = min_free_bytes

    def _path(self, key: str) -> Path:
        path = (self.root / key).resolve()
        if not path.is_relative_to(self.root):
            raise ValueError(f"object key escapes the store: {key!r}")
        return path

    def check(self) -> None:
        self._check_writable()
        stat = os.statvfs(self.root)
        free = stat.f_bavail * stat.f_frsize
        if free < self.min_free_bytes:
            raise StorageFull(
                f"storage folder {self.root} has {free} bytes free, "
                f"under ARRAYQ_STORAGE_MIN_FREE_BYTES={self.min_free_bytes}"
            )

    def prepare(self, expire_after: timedelta) -> None:
        """Nothing to set up: the worker's periodic cleanup deletes expired files."""
        self._check_writable()

    def _check_writable(self) -> None:
        if not (self.root.is_dir() and os.access(self.root, os.W_OK)):
            raise StorageUnavailable(f"storage folder {self.root} is not a writable directory")

    def write(self, key: str, chunks: Iterable[bytes | memoryview], length: int) -> None:
        writer = self.begin_write(key, length)
        try:
            for chunk in chunks:
                writer.write(chunk)
            writer.commit()
        except BaseException:
            writer.abort()
            raise

    def copy(self, source: str, target: str) -> None:
        """A hard link under a temporary name renamed into place. The shared inode
        gets a fresh mtime, so the age sweep counts the copy from now."""
        src, path = self._path(source), self._path(target)
        tmp = path.parent / f".tmp-link-{os.urandom(8).hex()}"
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            os.link(src, tmp)
            os.replace(tmp, path)
            os.utime(path)
        except FileNotFoundError:
            tmp.unlink(missing_ok=True)
            raise NotFound(source) from None
        except OSError as exc:
            tmp.unlink(missing_ok=True)
            raise StorageUnavailable(f"cannot copy {source!r}: {exc}") from exc

    def begin_write(self, key: str, length: int) -> "LocalWriter":
        path = self._path(key)
        with disk_errors(path.parent):
            path.parent.mkdir(parents=True, exist_ok=True)
            fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=TEMP_PREFIX)
        return LocalWriter(path, Path(tmp), os.fdopen(fd, "wb"), length)

    def delete_leftovers(self, age: timedelta) -> int:
        """Delete temporary files of writes that died (a killed process) `age` ago."""
        cutoff = time.time() - age.total_seconds()
        deleted = 0
        for path in self.root.rglob(f"{TEMP_PREFIX}*"):
            with suppress(FileNotFoundError):
                if path.is_file() and path.stat().st_mtime < cutoff:
                    path.unlink()
                    deleted += 1
        return deleted

    def open(self, key: str) -> BinaryIO:
        try:
            return self._path(key).open("rb")
        except FileNotFoundError:
            raise NotFound(key) from None

    def read_range(self, key: str, start: int, length: int) -> bytes:
        with self.open(key) as file:
            file.seek(start)
            return file.read(length)

    def iter_range(self, key: str, start: int, length: int) -> Iterator[bytes]:
        with self.open(key) as file:
            file.seek(start)
            while length > 0:
                chunk = file.read(min(_READ_CHUNK, length))
                if not chunk:
                    return
                length -= len(chunk)
                yield chunk

    def size(self, key: str) -> int:
        try:
            return self._path(key).stat().st_size
        except FileNotFoundError:
            raise NotFound(key) from None

    def exists(self, key: str) -> bool:
        return self._path(key).is_file()

    def delete(self, key: str) -> None:
        self._path(key).unlink(missing_ok=True)

    def delete_prefix(self, prefix: str) -> None:
        """Every object whose key starts with `prefix`, as on S3 (a folder, or
        the files and folders beside it whose names start with its last part)."""
        if not prefix or prefix.endswith("/"):
            paths: Iterable[Path] = self._files_under(prefix)
        else:
            base = self._path(prefix)
            matches = base.parent.glob(glob.escape(base.name) + "*") if base.parent.is_dir() else []
            paths = (found for match in matches for found in self._files_under_path(match))
        for path in paths:
            path.unlink(missing_ok=True)

    def local_path(self, key: str) -> Path | None:
        return self._path(key)

    def presigned_url(self, key: str, ttl: timedelta) -> str | None:
        return None

    def delete_older_than(self, age: timedelta) -> int:
        cutoff = time.time() - age.total_seconds()
        deleted = 0
        for path in self._files_under(""):
            try:
                if path.stat().st_mtime < cutoff:
                    path.unlink()
                    deleted += 1
            except FileNotFoundError:
                continue
        return deleted

    def _files_under(self, prefix: str) -> Iterator[Path]:
        return self._files_under_path(self._path(prefix.rstrip("/")) if prefix else self.root)

    @staticmethod
    def _files_under_path(base: Path) -> Iterator[Path]:
        if base.is_file():
            yield base
        elif base.is_dir():
            yield from (path for path in base.rglob("*") if path.is_file())


class LocalWriter:
    """A file being written piece by piece into a temporary name; `commit`
    renames it into place."""

    def __init__(self, path: Path, tmp: Path, file: BinaryIO, length: int) -> None:
        self._path, self._tmp, self._file = path, tmp, file
        self._length = length
        self._written = 0

    def write(self, data: bytes | memoryview) -> None:
        with disk_errors(self._path.parent):
            self._written += self._file.write(data)

    def commit(self) -> None:
        with disk_errors(self._path.parent):
            self._file.close()
            if self._written != self._length:
                raise ValueError(f"wrote {self._written} bytes, expected {self._length}")
            os.replace(self._tmp, self._path)

    def abort(self) -> None:
        with suppress(OSError):
            self._file.close()
        self._tmp.unlink(missing_ok=True)


@contextmanager
def disk_errors(folder: Path) -> Iterator[None]:
    """OSErrors of a write as ours: no space left -> StorageFull, others -> StorageUnavailable."""
    try:
        yield
    except OSError as exc:
        if exc.errno in _FULL_ERRNOS:
            raise StorageFull(f"no space left in {folder}") from exc
        raise StorageUnavailable(f"cannot write to {folder}: {exc}") from exc
