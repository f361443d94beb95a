"""A stalling disk for a scenario run: `chaos.stalling_fs` mounted in the run's directory.

`StallingDisk.mounted(directory, verdict)` mounts it (installing libfuse 2 with
``chaos/tools/install-fuse.sh`` when it is missing, as root), and unmounts it after;
where that cannot be done the run is skipped with the reason, except under CI (``CI``
set), where it fails, because CI must run every scenario.
"""

from __future__ import annotations

import contextlib
import ctypes.util
import os
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

from chaos.suite import Verdict

INSTALL = Path(__file__).parent / "tools" / "install-fuse.sh"


class StallingDisk:
    """A mounted stalling filesystem: files under `mount` go to `backing`; `stall()` holds every write."""

    def __init__(self, directory: Path, proc: subprocess.Popen[bytes]) -> None:
        self.mount = directory / "mount"
        self.backing = directory / "backing"
        self.stall_file = directory / "stalled"
        self._proc = proc

    def stall(self) -> None:
        self.stall_file.touch()

    def release(self) -> None:
        self.stall_file.unlink(missing_ok=True)

    @property
    def hits(self) -> int:
        """How many calls to the disk had to wait for a stall to end."""
        counted = Path(f"{self.stall_file}.hits")
        return int(counted.read_text()) if counted.exists() else 0

    @classmethod
    @contextlib.contextmanager
    def mounted(cls, directory: Path, verdict: Verdict) -> Iterator[StallingDisk | None]:
        """The disk mounted under `directory`, or None (and the verdict says why) where it cannot be."""
        missing = _missing()
        if missing:
            if os.environ.get("CI"):
                verdict.problems.append(missing)
            else:
                verdict.skipped = missing
            yield None
            return
        (directory / "mount").mkdir(parents=True)
        (directory / "backing").mkdir()
        paths = [str(directory / part) for part in ("backing", "mount", "stalled")]
        with open(directory / "stalling_fs.log", "ab") as log:
            proc = subprocess.Popen([sys.executable, "-m", "chaos.stalling_fs", *paths], stdout=log, stderr=log)
        disk = cls(directory, proc)
        try:
            disk._wait_mounted()
            yield disk
        finally:
            disk.release()
            subprocess.run(["umount", "-l", str(disk.mount)], capture_output=True, check=False)
            proc.terminate()
            proc.wait(10)

    def _wait_mounted(self) -> None:
        deadline = time.monotonic() + 10
        while not os.path.ismount(self.mount):
            if self._proc.poll() is not None or time.monotonic() > deadline:
                log = (self.mount.parent / "stalling_fs.log").read_text(errors="replace")
                raise RuntimeError(f"the stalling filesystem did not mount: {log[-500:]}")
            time.sleep(0.05)


def _missing() -> str:
    """Why a stalling disk cannot be mounted here (empty: it can), after installing libfuse if need be."""
    if not os.path.exists("/dev/fuse"):
        return "no /dev/fuse: FUSE is not available here"
    if ctypes.util.find_library("fuse") is None:
        if os.geteuid() != 0 or shutil.which("apt-get") is None:
            return f"no libfuse 2, and {INSTALL} cannot install it (it needs root and apt-get)"
        done = subprocess.run(["bash", str(INSTALL)], capture_output=True, text=True, timeout=900, check=False)
        if done.returncode != 0 or ctypes.util.find_library("fuse") is None:
            return f"{INSTALL} could not install libfuse 2: {done.stderr.strip()[-300:]}"
    if os.geteuid() != 0:
        return "mounting the stalling filesystem needs root"
    return ""
