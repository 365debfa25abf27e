"""Ctrl-C and SIGTERM: cancel the run's work, let it close its clients, say how far it got.

Python's default turns SIGINT into a KeyboardInterrupt raised wherever the loop happens to be,
which tears through tasks half-way (requests sent on closed clients, coroutines never awaited)
and leaves a traceback per task. Instead the signal cancels the command's task: cancellation
unwinds every `async with` (the registry pool closes its clients once) and the command learns
which signal stopped it, so it can print one line and exit 130 or 143. The line says how far
the command got in its own units: edges for `cip run`, and for the commands that only read,
what they work through (a `Tally` they keep up to date).
"""

from __future__ import annotations

import signal
from collections.abc import Coroutine
from typing import TYPE_CHECKING, Any, TypeVar

from cip.report.document import INTERRUPT_EXIT_CODES, Signal

if TYPE_CHECKING:
    from cip.promote.tally import Tally

T = TypeVar("T")

SIGNALS: tuple[tuple[signal.Signals, Signal], ...] = (
    (signal.SIGINT, "SIGINT"),
    (signal.SIGTERM, "SIGTERM"),
)


class Interrupted(Exception):
    """A signal stopped the command; counts are None while its units were not known."""

    def __init__(
        self,
        signal_name: Signal,
        done: int | None = None,
        not_started: int | None = None,
        *,
        unit: str = "edges",
        verb: str = "done",
    ) -> None:
        super().__init__(signal_name)
        self.signal_name = signal_name
        self.done = done
        self.not_started = not_started
        self.unit = unit
        self.verb = verb

    @property
    def counted(self) -> bool:
        return self.done is not None and self.not_started is not None

    @property
    def exit_code(self) -> int:
        return INTERRUPT_EXIT_CODES[self.signal_name]

    def line(self) -> str:
        """The one line a person reads on stderr."""
        if self.done is None or self.not_started is None:
            return "interrupted; rerun to continue"
        return (
            f"interrupted: {self.done:,} {self.unit} {self.verb}, {self.not_started:,} not "
            "started; rerun to continue"
        )


async def until_signalled(coroutine: Coroutine[Any, Any, T], tally: Tally | None = None) -> T:
    """Await `coroutine` in the current task; SIGINT or SIGTERM cancels it and raises
    `Interrupted`, with `tally`'s counts when given. A second signal while it unwinds is
    ignored: closing clients must finish."""
    import asyncio  # here: --parse-only and --version never start an event loop

    loop = asyncio.get_running_loop()
    task = asyncio.current_task()
    assert task is not None
    received: list[Signal] = []

    def on_signal(name: Signal) -> None:
        if not received:
            received.append(name)
            task.cancel()

    installed: list[tuple[signal.Signals, Any]] = []
    try:
        for number, name in SIGNALS:
            previous = signal.getsignal(number)
            loop.add_signal_handler(number, on_signal, name)
            installed.append((number, previous))
    except (NotImplementedError, RuntimeError, ValueError):
        pass  # not the main thread (or no signals on this platform): Python's defaults stay
    try:
        return await coroutine
    except asyncio.CancelledError:
        if not received:
            raise
        task.uncancel()
        if tally is None:
            raise Interrupted(received[0]) from None
        raise Interrupted(
            received[0], tally.done, tally.not_started, unit=tally.unit, verb=tally.verb
        ) from None
    finally:
        for number, previous in installed:
            loop.remove_signal_handler(number)
            signal.signal(number, previous)  # what was there before (asyncio.run's own SIGINT)
