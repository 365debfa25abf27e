"""Running a command's coroutine to completion, its result kept out of the event loop's hands.

`asyncio.run` (Python 3.11 and 3.12) checks on exit whether its SIGINT handler is still
installed with `signal.getsignal`, which tries to turn the handler (a partial holding the main
task) into a `signal.Handlers` member; the failed lookup formats an error message with the
handler's repr, which includes the finished task's result. For a plan of registry.k8s.io's
720,478 edges that repr took seconds and hundreds of megabytes. The result is therefore passed
back through a box the task does not own, and the task itself returns None.
"""

from __future__ import annotations

import asyncio
from collections.abc import Coroutine
from typing import Any, TypeVar

T = TypeVar("T")


def run_coroutine(coroutine: Coroutine[Any, Any, T]) -> T:
    """`asyncio.run(coroutine)`, returning its result without the main task holding it."""
    box: list[T] = []

    async def main() -> None:
        box.append(await coroutine)

    asyncio.run(main())
    return box[0]
