"""Object store in a folder on this machine's disk."""

import glob
import os
import tempfile
import time
from collections.abc import Iterable, Iterator
from datetime import timedelta
from pathlib import Path
from typing import BinaryIO

from arrayq.storage.errors import NotFound, StorageUnavailable

_READ_CHUNK = 1 << 20


class LocalStore:
    """Objects are files under `root`; a write goes to a temporary file that is
    renamed into place, so a reader never sees half an object."""

    def __init__(self, root: Path) -> None:
        self.root = root.resolve()
        self.root.mkdir(parents=True, exist_ok=True)

    def _path(self, key: str) -> Path:
        path = (self.root / key).resolve()
        if not path.is_relative_to(self.root):
            raise ValueError(f"object key escapes the store: {key!r}")
        return path

    def check(self) -> None:
        if not (self.root.is_dir() and os.access(self.root, os.W_OK)):
            raise StorageUnavailable(f"storage folder {self.root} is not a writable directory")

    def prepare(self, expire_after: timedelta) -> None:
        """Nothing to set up: the worker's periodic cleanup deletes expired files."""
        self.check()

    def write(self, key: str, chunks: Iterable[bytes | memoryview], length: int) -> None:
        path = self._path(key)
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".tmp-")
        except OSError as exc:
            raise StorageUnavailable(f"cannot write to {path.parent}: {exc}") from exc
        try:
            with os.fdopen(fd, "wb") as file:
                written = sum(file.write(chunk) for chunk in chunks)
            if written != length:
                raise ValueError(f"wrote {written} bytes, expected {length}")
            os.replace(tmp, path)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
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
