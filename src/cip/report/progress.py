"""Progress for people: a rich bar on a terminal, a plain line every few seconds in CI logs."""

from __future__ import annotations

import sys
import time
from types import TracebackType
from typing import TYPE_CHECKING, TextIO

if TYPE_CHECKING:
    from rich.progress import Progress, TaskID


class RequestProgress:
    """Counts finished units of one phase (requests, destinations); entered as a context."""

    def __init__(
        self, phase: str, unit: str = "requests", stream: TextIO | None = None, every: float = 5.0
    ) -> None:
        self._phase = phase
        self._unit = unit
        self._stream = stream or sys.stderr
        self._every = every
        self._done = 0
        self._last = time.monotonic()
        self._bar: Progress | None = None
        self._task: TaskID | None = None

    def __enter__(self) -> RequestProgress:
        if self._stream.isatty():
            # rich is imported only for a terminal: CI logs and pipes do not pay for it.
            from rich.console import Console
            from rich.progress import Progress, SpinnerColumn, TextColumn, TimeElapsedColumn

            self._bar = Progress(
                SpinnerColumn(),
                TextColumn("[bold]{task.description}"),
                TextColumn("{task.completed:,} " + self._unit),
                TimeElapsedColumn(),
                console=Console(file=self._stream),
                transient=True,
            )
            self._bar.start()
            self._task = self._bar.add_task(self._phase, total=None)
        return self

    def __call__(self, finished: int) -> None:
        self._done += finished
        if self._bar is not None and self._task is not None:
            self._bar.update(self._task, completed=self._done)
            return
        now = time.monotonic()
        if now - self._last >= self._every:
            self._last = now
            print(
                f"{self._phase}: {self._done:,} {self._unit} so far", file=self._stream, flush=True
            )

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if self._bar is not None:
            self._bar.stop()
