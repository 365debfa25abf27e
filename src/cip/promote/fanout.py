"""One read of a large source blob, streamed to every destination that needs it at once.

Promoting to 20+ mirrors would otherwise read each large layer from staging 20 times (egress
paid on every read). Destinations that ask for the same source blob within a short window
share one source stream: each gets its own bounded queue, so memory stays at a few chunks per
destination and the source is read at the pace of the slowest destination. A destination that
arrives after the stream started, or restarts a failed upload, reads the source on its own.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable

from cip.errors import RegistryError

JOIN_WINDOW = 0.05  # seconds the first reader waits for the other destinations to arrive
QUEUE_CHUNKS = 4  # chunks buffered per destination
STALL_SECONDS = 10.0  # a destination not reading for this long leaves the shared stream

_END = object()


class Subscriber:
    """One destination's view of the shared stream; `close()` it when its upload is over."""

    def __init__(self) -> None:
        self.queue: asyncio.Queue[object] = asyncio.Queue(QUEUE_CHUNKS)
        self.gone = False

    async def chunks(self) -> AsyncIterator[bytes]:
        try:
            while True:
                item = await self.queue.get()
                if item is _END:
                    return
                if isinstance(item, BaseException):
                    raise item
                assert isinstance(item, bytes)
                yield item
        finally:
            self.close()

    def close(self) -> None:
        """Never block the other destinations on one that stopped reading (or never began)."""
        self.gone = True
        while not self.queue.empty():
            self.queue.get_nowait()


class Broadcast:
    """The shared stream of one source blob; `subscribe` until it starts."""

    def __init__(self, open_source: Callable[[], AsyncIterator[bytes]]) -> None:
        self._open_source = open_source
        self._subscribers: list[Subscriber] = []
        self.started = False
        self._task: asyncio.Task[None] | None = None

    def subscribe(self) -> Subscriber | None:
        """A place in the shared stream for one destination, or None once it has started."""
        if self.started:
            return None
        subscriber = Subscriber()
        self._subscribers.append(subscriber)
        if self._task is None:
            self._task = asyncio.ensure_future(self._produce())
        return subscriber

    async def _produce(self) -> None:
        await asyncio.sleep(JOIN_WINDOW)
        self.started = True
        try:
            async for chunk in self._open_source():
                live = [s for s in self._subscribers if not s.gone]
                if not live:
                    return
                for subscriber in live:
                    await _offer(subscriber, chunk)
            for subscriber in self._subscribers:
                await _offer(subscriber, _END)
        except BaseException as error:
            # Whatever stopped the source, every destination must hear of it, not wait forever.
            failure = (
                error
                if isinstance(error, RegistryError)
                else RegistryError(f"reading the source blob failed: {error!r}", retryable=True)
            )
            for subscriber in self._subscribers:
                if not subscriber.gone:
                    subscriber.close()  # make room, then leave only the failure
                    subscriber.gone = False
                    subscriber.queue.put_nowait(failure)
            if not isinstance(error, Exception):
                raise


async def _offer(subscriber: Subscriber, item: object) -> None:
    """Hand a chunk to one subscriber; one that stops reading for long is dropped.

    A subscriber that closes drains its queue, which releases a put waiting on it. One that
    stalls (its upload waits for a connection that other subscribers of some other stream
    hold) would hold every reader of this stream: after STALL_SECONDS it gets a retryable
    error instead, and its upload restarts on a source read of its own.
    """
    if subscriber.gone:
        return
    try:
        await asyncio.wait_for(subscriber.queue.put(item), STALL_SECONDS)
    except TimeoutError:
        subscriber.close()
        subscriber.queue.put_nowait(
            RegistryError("a mirror stopped reading the shared source stream", retryable=True)
        )
