"""Running a command's coroutine to completion: on uvloop's event loop where it is installed,
its result kept out of the event loop's hands.

uvloop is a dependency on Linux because it pays there: measured side by side (BENCHMARKS.md,
case 6), it cuts cip's client CPU per registry request, and on two cores the client's CPU
competes with the registries it drives. Its import (~40 ms) is paid only by commands that run
a coroutine, never by `--version` or `--parse-only`.

`asyncio.run` (Python 3.11 and 3.12) checks on exit whether its SIGINT handler is still
installed with `signal.getsignal`, which tries to turn the handler (a partial holding the main
task) into a `signal.Handlers` member; the failed lookup formats an error message with the
handler's repr, which includes the finished task's result. For a plan of registry.k8s.io's
720,478 edges that repr took seconds and hundreds of megabytes. The result is therefore passed
back through a box the task does not own, and the task itself returns None.
"""

from __future__ import annotations

from collections.abc import Coroutine
from typing import Any, TypeVar

T = TypeVar("T")


def run_coroutine(coroutine: Coroutine[Any, Any, T]) -> T:
    """`asyncio.run(coroutine)`, returning its result without the main task holding it."""
    import asyncio  # here, not at the top: --version and --parse-only never need an event loop

    box: list[T] = []

    async def main() -> None:
        box.append(await coroutine)

    try:
        import uvloop
    except ImportError:  # not installed (not Linux): the standard loop does the same work
        asyncio.run(main())
    else:
        with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
            runner.run(main())
    return box[0]
