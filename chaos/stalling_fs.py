"""A disk that stalls on demand: a FUSE passthrough filesystem whose writes wait while a file exists.

    python -m chaos.stalling_fs BACKING MOUNTPOINT STALL_FILE

Everything under MOUNTPOINT is BACKING's. While STALL_FILE exists, every call that
changes the disk (write, fsync, create, truncate, rename, unlink, mkdir ...) blocks
inside the kernel's request, as on a disk whose controller stopped answering; reads go
on. The process that wrote to the disk sees a system call that does not return, not an
error. ``STALL_FILE.hits`` counts the calls that waited, so a scenario can tell that its
stall met the program under test. It needs libfuse 2 (``chaos/tools/install-fuse.sh``)
and the right to mount (root, or a user allowed to use ``/dev/fuse``).
"""

from __future__ import annotations

import errno
import os
import sys
import threading
import time
from pathlib import Path
from typing import Any

from fuse import FUSE, FuseOSError, Operations

STAT_FIELDS = ("st_atime", "st_ctime", "st_gid", "st_mode", "st_mtime", "st_nlink", "st_size", "st_uid")
STATFS_FIELDS = ("f_bavail", "f_bfree", "f_blocks", "f_bsize", "f_favail", "f_ffree", "f_files", "f_flag", "f_frsize")


class StallingPassthrough(Operations):  # type: ignore[misc]
    """BACKING's files, with every change held while the stall file exists."""

    def __init__(self, backing: Path, stall_file: Path) -> None:
        self.backing = backing
        self.stall_file = stall_file
        self._hits = 0
        self._lock = threading.Lock()

    def _path(self, path: str) -> str:
        return str(self.backing / path.lstrip("/"))

    def _hold(self) -> None:
        """Wait while the disk is stalled; count the calls that did."""
        if not self.stall_file.exists():
            return
        with self._lock:
            self._hits += 1
            Path(f"{self.stall_file}.hits").write_text(str(self._hits))
        while self.stall_file.exists():
            time.sleep(0.01)

    # reads: never held
    def getattr(self, path: str, fh: int | None = None) -> dict[str, Any]:
        st = os.lstat(self._path(path))  # fusepy answers an OSError with its errno
        return {name: getattr(st, name) for name in STAT_FIELDS}

    def access(self, path: str, mode: int) -> None:
        if not os.access(self._path(path), mode):
            raise FuseOSError(errno.EACCES)

    def readdir(self, path: str, fh: int) -> list[str]:
        return [".", "..", *os.listdir(self._path(path))]

    def readlink(self, path: str) -> str:
        return os.readlink(self._path(path))

    def statfs(self, path: str) -> dict[str, int]:
        st = os.statvfs(self._path(path))
        return {name: getattr(st, name) for name in STATFS_FIELDS}

    def open(self, path: str, flags: int) -> int:
        if flags & (os.O_WRONLY | os.O_RDWR | os.O_TRUNC):
            self._hold()
        return os.open(self._path(path), flags)

    def read(self, path: str, size: int, offset: int, fh: int) -> bytes:
        return os.pread(fh, size, offset)

    def flush(self, path: str, fh: int) -> None:
        return None

    def release(self, path: str, fh: int) -> None:
        os.close(fh)

    # changes: held while stalled
    def write(self, path: str, data: bytes, offset: int, fh: int) -> int:
        self._hold()
        return os.pwrite(fh, data, offset)

    def fsync(self, path: str, datasync: int, fh: int) -> None:
        self._hold()
        (os.fdatasync if datasync else os.fsync)(fh)

    def create(self, path: str, mode: int, fi: Any = None) -> int:
        self._hold()
        return os.open(self._path(path), os.O_RDWR | os.O_CREAT, mode)

    def truncate(self, path: str, length: int, fh: int | None = None) -> None:
        self._hold()
        os.truncate(self._path(path), length)

    def unlink(self, path: str) -> None:
        self._hold()
        os.unlink(self._path(path))

    def rename(self, old: str, new: str) -> None:
        self._hold()
        os.rename(self._path(old), self._path(new))

    def mkdir(self, path: str, mode: int) -> None:
        self._hold()
        os.mkdir(self._path(path), mode)

    def rmdir(self, path: str) -> None:
        self._hold()
        os.rmdir(self._path(path))

    def symlink(self, target: str, source: str) -> None:
        self._hold()
        os.symlink(source, self._path(target))

    def link(self, target: str, source: str) -> None:
        self._hold()
        os.link(self._path(source), self._path(target))

    def chmod(self, path: str, mode: int) -> None:
        self._hold()
        os.chmod(self._path(path), mode)

    def chown(self, path: str, uid: int, gid: int) -> None:
        self._hold()
        os.chown(self._path(path), uid, gid)

    def utimens(self, path: str, times: tuple[float, float] | None = None) -> None:
        self._hold()
        os.utime(self._path(path), times)


def main(argv: list[str]) -> int:
    if len(argv) != 3:
        print(__doc__, file=sys.stderr)
        return 2
    backing, mountpoint, stall_file = (Path(a) for a in argv)
    FUSE(StallingPassthrough(backing, stall_file), str(mountpoint), foreground=True, nothreads=False)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
