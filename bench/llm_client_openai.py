"""The official `openai` package's AsyncOpenAI against the loopback server, as
bench/llm_client.sh runs it beside primer's client: the same prompts, the same number in
flight, one process, CPU seconds from getrusage.

usage: llm_client_openai.py BASE_URL [REQUESTS] [IN_FLIGHT] [SERVER_LATENCY_MS]
"""

import asyncio
import json
import resource
import sys
import time

import httpx
from openai import AsyncOpenAI


def cpu_seconds():
    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime


async def main():
    url = sys.argv[1]
    n = int(sys.argv[2]) if len(sys.argv) > 2 else 5000
    in_flight = int(sys.argv[3]) if len(sys.argv) > 3 else 256
    server_ms = float(sys.argv[4]) if len(sys.argv) > 4 else 50.0
    http = httpx.AsyncClient(
        limits=httpx.Limits(max_connections=in_flight, max_keepalive_connections=in_flight),
        timeout=30.0,
    )
    client = AsyncOpenAI(base_url=url, api_key="bench", max_retries=0, http_client=http)
    sem = asyncio.Semaphore(in_flight)

    async def one(prompt):
        async with sem:
            t = time.perf_counter()
            r = await client.chat.completions.create(
                model="bench-model",
                messages=[{"role": "user", "content": prompt}],
                max_tokens=64,
                seed=1,
            )
            assert r.choices[0].message.content
            return time.perf_counter() - t

    # One stream, in_flight at a time; the first `warm` fill the pipeline and are not
    # measured (as in primer's bench).
    warm = 2 * in_flight
    start = {}

    async def timed(i):
        if i == warm:
            start["t"], start["cpu"] = time.perf_counter(), cpu_seconds()
        return await one(f"Write a short textbook section about topic number {i} for a beginner.")

    async def feeder():
        tasks = []
        for i in range(n + warm):
            await sem.acquire()
            sem.release()
            tasks.append(asyncio.ensure_future(timed(i)))
            await asyncio.sleep(0)
        return await asyncio.gather(*tasks)

    lat = (await feeder())[warm:]
    t0, cpu0 = start["t"], start["cpu"]
    wall, cpu = time.perf_counter() - t0, cpu_seconds() - cpu0
    lat = sorted(x * 1000 for x in lat)
    pct = lambda q: lat[min(len(lat), max(1, int(-(-q * len(lat) // 1)))) - 1]
    rps = n / wall
    print(
        f"openai: {n} requests, {in_flight} in flight: {rps:.0f} requests/s, {cpu:.2f} CPU s "
        f"({n / cpu:.0f} requests per CPU second), added latency p50 {pct(0.5) - server_ms:.2f} ms "
        f"p99 {pct(0.99) - server_ms:.2f} ms (server {server_ms} ms)"
    )
    print(json.dumps({"tool": "openai", "requests": n, "in_flight": in_flight, "wall_s": wall,
                      "cpu_s": cpu, "rps": rps, "p50_ms": pct(0.5), "p99_ms": pct(0.99)}))
    await http.aclose()


asyncio.run(main())
