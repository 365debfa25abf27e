"""A command's coroutine result comes back without anyone formatting it.

`asyncio.run` formats its main task (result included) while checking its SIGINT handler; for a
plan of the whole Kubernetes corpus that cost seconds and hundreds of megabytes.
"""

from __future__ import annotations

import asyncio

from cip.cli.loop import run_coroutine


class Loud:
    reprs = 0

    def __repr__(self) -> str:
        Loud.reprs += 1
        return "Loud()"


async def produce() -> Loud:
    await asyncio.sleep(0)
    return Loud()


def test_result_is_returned_without_being_formatted() -> None:
    Loud.reprs = 0
    result = run_coroutine(produce())
    assert isinstance(result, Loud)
    assert Loud.reprs == 0


def test_plain_asyncio_run_formats_the_result_it_returns() -> None:
    """Why run_coroutine exists: if this starts failing, Python fixed it and it can go."""
    Loud.reprs = 0
    asyncio.run(produce())
    assert Loud.reprs >= 1
