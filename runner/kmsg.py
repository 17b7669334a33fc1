"""Watch the kernel log while a run is in progress and catch splats.

Reads /dev/kmsg from its current end (or, for tests, any file that grows). A splat is a
line that starts one (runner/splats.py, the rule the labs and remote hosts use too); it is
attributed to the instances running when it was read.
"""
from __future__ import annotations

import dataclasses
import errno
import os
import re
import threading
import time
from typing import Callable

from runner import splats
from runner.splats import SPLAT_ERE  # noqa: F401  (gnuparallel's remote filter)

_KMSG_PREFIX = re.compile(r"^\d+,\d+,\d+,[^;]*;")


@dataclasses.dataclass
class Splat:
    line: str
    time: float                 # time.time() when read
    instances: list[str]        # ids of the instances running then


class Watcher:
    """Collects kernel log splats in a thread; `error` says why the log can't be read."""

    def __init__(self, path: str, running: Callable[[], list[str]]):
        self.path = path
        self.running = running
        self.splats: list[Splat] = []
        self.lines: list[str] = []      # every new kernel log line, for the run's dmesg.txt
        self.error: str | None = None
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._fd: int | None = None
        self._buf = b""
        self._lock = threading.Lock()   # poll(): the thread's, and the runner's at a finish

    def start(self) -> None:
        try:
            self._fd = os.open(self.path, os.O_RDONLY | os.O_NONBLOCK)
            os.lseek(self._fd, 0, os.SEEK_END)
        except OSError as e:
            self.error = f"kernel log {self.path} can't be read ({e.strerror}): splats not watched"
            if self._fd is not None:
                os.close(self._fd)
                self._fd = None
            return
        self._thread = threading.Thread(target=self._loop, name="kmsg", daemon=True)
        self._thread.start()

    def _records(self) -> list[str]:
        assert self._fd is not None
        out = []
        while True:
            try:
                chunk = os.read(self._fd, 8192)
            except OSError as e:
                if e.errno == errno.EAGAIN:
                    break
                if e.errno == errno.EPIPE:   # /dev/kmsg: records overwritten; go on
                    continue
                raise
            if not chunk:
                break
            self._buf += chunk
        *lines, self._buf = self._buf.split(b"\n")
        for raw in lines:
            text = raw.decode(errors="replace")
            out.append(_KMSG_PREFIX.sub("", text))
        return out

    def poll(self) -> None:
        """Read whatever is new (called by the thread, by the runner as an instance ends,
        and once more at stop)."""
        with self._lock:
            self._poll()

    def _poll(self) -> None:
        if self._fd is None:
            return
        try:
            records = self._records()
        except OSError as e:
            self.error = f"reading kernel log {self.path} failed ({e.strerror})"
            return
        for line in records:
            self.lines.append(line)
            if splats.start_kind(line):
                self.splats.append(Splat(line, time.time(), list(self.running())))

    def _loop(self) -> None:
        while not self._stop.wait(0.2):
            self.poll()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
        self.poll()
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None
