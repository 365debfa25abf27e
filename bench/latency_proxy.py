"""A TCP proxy that adds round-trip latency, for registries that are far away as users have them.

`tc netem` is not available on every kernel (nor to an unprivileged user), so latency is added
in user space: every chunk read from one side is written to the other `delay` seconds later, in
order, in both directions, so a request/response exchange costs two one-way delays more. A new
connection also waits one round trip before its first bytes go upstream, as a TCP handshake
would. Runs as its own process so its CPU is not the harness's:

    python3 -m bench.latency_proxy UPSTREAM_HOST:PORT ONE_WAY_MS    # prints its port, serves
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import subprocess
import sys
from dataclasses import dataclass

_CHUNK = 256 * 1024


async def _pump(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, delay: float) -> None:
    loop = asyncio.get_running_loop()
    queue: asyncio.Queue[tuple[float, bytes]] = asyncio.Queue()

    async def deliver() -> None:
        while True:
            due, data = await queue.get()
            wait = due - loop.time()
            if wait > 0:
                await asyncio.sleep(wait)
            if not data:
                with contextlib.suppress(OSError):
                    writer.write_eof()
                return
            writer.write(data)
            await writer.drain()

    delivering = asyncio.create_task(deliver())
    try:
        while data := await reader.read(_CHUNK):
            queue.put_nowait((loop.time() + delay, data))
    except OSError:
        pass
    queue.put_nowait((loop.time() + delay, b""))
    with contextlib.suppress(OSError):
        await delivering


async def _serve(upstream: str, delay: float) -> None:
    host, _, port = upstream.rpartition(":")

    async def handle(client_r: asyncio.StreamReader, client_w: asyncio.StreamWriter) -> None:
        await asyncio.sleep(2 * delay)  # the handshake's round trip
        try:
            server_r, server_w = await asyncio.open_connection(host, int(port))
        except OSError:
            client_w.close()
            return
        await asyncio.gather(_pump(client_r, server_w, delay), _pump(server_r, client_w, delay))
        for writer in (client_w, server_w):
            writer.close()

    server = await asyncio.start_server(handle, "127.0.0.1", 0, backlog=512)
    print(server.sockets[0].getsockname()[1], flush=True)
    stop = asyncio.Event()
    asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, stop.set)
    async with server:
        await stop.wait()


@dataclass
class LatencyProxy:
    """A running proxy process; `host` is where clients connect. Stopped by its own PID."""

    process: subprocess.Popen[str]
    host: str

    @classmethod
    def start(cls, upstream: str, one_way_ms: float) -> LatencyProxy:
        process = subprocess.Popen(
            [sys.executable, "-m", "bench.latency_proxy", upstream, str(one_way_ms)],
            stdout=subprocess.PIPE,
            text=True,
            cwd=os.path.dirname(os.path.dirname(os.path.abspath(__file__))),
        )
        assert process.stdout is not None
        port = process.stdout.readline().strip()
        if not port.isdigit():
            process.kill()
            raise RuntimeError(f"latency proxy for {upstream} did not start")
        return cls(process, f"127.0.0.1:{port}")

    def stop(self) -> None:
        self.process.send_signal(signal.SIGTERM)
        try:
            self.process.wait(10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()


def main() -> None:
    upstream, one_way_ms = sys.argv[1], float(sys.argv[2])
    asyncio.run(_serve(upstream, one_way_ms / 1000))


if __name__ == "__main__":
    main()
