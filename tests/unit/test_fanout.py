"""The shared source stream: one read, every subscriber served, failures reach everyone."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

from cip.errors import RegistryError
from cip.promote.fanout import Broadcast, Subscriber

CHUNKS = [bytes([i]) * 1000 for i in range(20)]


async def collect(subscriber: Subscriber) -> bytes:
    return b"".join([chunk async for chunk in subscriber.chunks()])


def test_one_source_read_feeds_every_subscriber() -> None:
    opened = 0

    async def source() -> AsyncIterator[bytes]:
        nonlocal opened
        opened += 1
        for chunk in CHUNKS:
            await asyncio.sleep(0)
            yield chunk

    async def scenario() -> list[bytes]:
        broadcast = Broadcast(source)
        subscribers = [broadcast.subscribe() for _ in range(3)]
        assert all(s is not None for s in subscribers)
        results = await asyncio.gather(*(collect(s) for s in subscribers if s is not None))
        assert broadcast.subscribe() is None  # too late: the stream has started
        return list(results)

    assert asyncio.run(scenario()) == [b"".join(CHUNKS)] * 3
    assert opened == 1


def test_a_failing_source_fails_every_subscriber() -> None:
    async def source() -> AsyncIterator[bytes]:
        yield CHUNKS[0]
        raise RegistryError("content hashes to sha256:bad; refused")

    async def scenario() -> list[BaseException | bytes]:
        broadcast = Broadcast(source)
        subscribers = [broadcast.subscribe() for _ in range(2)]
        return await asyncio.gather(
            *(collect(s) for s in subscribers if s is not None), return_exceptions=True
        )

    results = asyncio.run(asyncio.wait_for(scenario(), timeout=5))
    assert all(isinstance(r, RegistryError) for r in results)


def test_a_subscriber_that_never_reads_does_not_block_the_others() -> None:
    async def source() -> AsyncIterator[bytes]:
        for chunk in CHUNKS:
            yield chunk

    async def scenario() -> bytes:
        broadcast = Broadcast(source)
        reader, idle = broadcast.subscribe(), broadcast.subscribe()
        assert reader is not None and idle is not None
        task = asyncio.ensure_future(collect(reader))
        await asyncio.sleep(0.2)
        idle.close()  # its upload failed before reading anything
        return await task

    assert asyncio.run(asyncio.wait_for(scenario(), timeout=5)) == b"".join(CHUNKS)
