"""What one call from a thread into an event loop costs: anyio's blocking portal against
`asyncio.run_coroutine_threadsafe`, the round trip every blocking `hub.service` call makes.

    .venv/bin/python benchmarks/portal_call.py [--calls 20000]

The figure behind keeping the Hub on its own `asyncio.Runner` (docs/architecture.md).
"""

from __future__ import annotations

import argparse
import asyncio
import threading
import time

from anyio.from_thread import start_blocking_portal


async def echo(value: int) -> int:
    return value


def through_portal(calls: int) -> float:
    with start_blocking_portal("asyncio") as portal:
        portal.call(echo, 0)  # warm up
        started = time.perf_counter()
        for value in range(calls):
            portal.call(echo, value)
        return (time.perf_counter() - started) / calls


def through_run_coroutine_threadsafe(calls: int) -> float:
    loop = asyncio.new_event_loop()
    thread = threading.Thread(target=loop.run_forever, daemon=True)
    thread.start()
    try:
        asyncio.run_coroutine_threadsafe(echo(0), loop).result()
        started = time.perf_counter()
        for value in range(calls):
            asyncio.run_coroutine_threadsafe(echo(value), loop).result()
        return (time.perf_counter() - started) / calls
    finally:
        loop.call_soon_threadsafe(loop.stop)
        thread.join()
        loop.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--calls", type=int, default=20_000)
    calls = parser.parse_args().calls
    portal = through_portal(calls)
    direct = through_run_coroutine_threadsafe(calls)
    print(f"anyio portal.call:          {portal * 1e6:6.1f} us per call")
    print(f"run_coroutine_threadsafe:   {direct * 1e6:6.1f} us per call")
    print(f"ratio:                      {portal / direct:6.2f}")


if __name__ == "__main__":
    main()
