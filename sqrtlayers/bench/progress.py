"""A progress bar on stderr: tqdm when it is installed, plain periodic lines when it is not
(the GPU machine the study targets may lack tqdm), nothing when disabled."""

from __future__ import annotations

import sys
import time
from typing import Protocol

__all__ = ["Progress", "make_progress"]


class Progress(Protocol):
    """The part of tqdm's interface the benchmark uses."""

    def update(self, n: int = 1) -> object: ...

    def set_description_str(self, desc: str) -> object: ...

    def close(self) -> object: ...


class _LineProgress:
    """``[done/total] description`` on stderr, at most every ``interval`` seconds."""

    def __init__(self, total: int, interval: float = 5.0) -> None:
        self.total, self.done, self.desc = total, 0, ""
        self.interval = interval
        self._last = 0.0

    def update(self, n: int = 1) -> None:
        self.done += n
        now = time.monotonic()
        if now - self._last >= self.interval or self.done >= self.total:
            self._last = now
            print(f"[{self.done}/{self.total}] {self.desc}", file=sys.stderr, flush=True)

    def set_description_str(self, desc: str) -> None:
        self.desc = desc

    def close(self) -> None:
        pass


class _NoProgress:
    def update(self, n: int = 1) -> None:
        pass

    def set_description_str(self, desc: str) -> None:
        pass

    def close(self) -> None:
        pass


class _TqdmProgress:
    """tqdm, redrawn on its own schedule rather than on every description change (which, in a
    log file rather than a terminal, would add a line per measured point)."""

    def __init__(self, total: int) -> None:
        from tqdm import tqdm

        interval = 0.1 if sys.stderr.isatty() else 15.0
        self._bar = tqdm(total=total, file=sys.stderr, dynamic_ncols=True, mininterval=interval)

    def update(self, n: int = 1) -> None:
        self._bar.update(n)

    def set_description_str(self, desc: str) -> None:
        self._bar.set_description_str(desc, refresh=False)

    def close(self) -> None:
        self._bar.close()


def make_progress(total: int, enabled: bool = True) -> Progress:
    """A progress bar over ``total`` units of work."""
    if not enabled:
        return _NoProgress()
    try:
        return _TqdmProgress(total)
    except ImportError:
        return _LineProgress(total)
