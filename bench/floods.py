"""Floods against a running tooltool server (bench/floods starts it).

slowloris: N connections from 127.0.0.2 send request headers one byte per
second (reconnecting whenever the server closes one) for D seconds, while
a probe from 127.0.0.1 sends a normal request every 100 ms. Prints the
probe's latencies, its failures, and the server's open descriptors before,
at the peak and after.

search: M batches of F files each, then P parallel `GET /upload?q=`
loops for S seconds while the probe downloads; prints the answer size,
the server's peak RSS and the probe's worst latency.
"""

import asyncio
import json
import os
import sys
import time
import urllib.request


def fds(pid):
    return len(os.listdir(f"/proc/{pid}/fd"))


def rss_kib(pid, field="VmRSS"):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    return 0


async def probe(host, port, path, stop, latencies, failures, token=None):
    """One fresh connection per request, as a CI worker's client would."""
    auth = f"authorization: Bearer {token}\r\n" if token else ""
    request = f"GET {path} HTTP/1.1\r\nhost: {host}\r\n{auth}connection: close\r\n\r\n".encode()
    while not stop.is_set():
        started = time.monotonic()
        try:
            reader, writer = await asyncio.wait_for(
                asyncio.open_connection(host, port, local_addr=("127.0.0.1", 0)), 5
            )
            writer.write(request)
            head = await asyncio.wait_for(reader.readline(), 5)
            await asyncio.wait_for(reader.read(), 5)
            writer.close()
            if not head.startswith((b"HTTP/1.1 200", b"HTTP/1.1 302")):
                failures.append(head[:40])
        except Exception as e:  # noqa: BLE001 - every failure counts
            failures.append(repr(e)[:60])
        latencies.append(time.monotonic() - started)
        await asyncio.sleep(0.1)


async def trickler(host, port, stop, counters):
    """Sends headers a byte a second; reconnects when the server closes."""
    request = b"GET /__heartbeat__ HTTP/1.1\r\nhost: x\r\nx-a: " + b"a" * 100000
    while not stop.is_set():
        try:
            reader, writer = await asyncio.open_connection(host, port, local_addr=("127.0.0.2", 0))
        except OSError:
            counters["connect_failed"] += 1
            await asyncio.sleep(1)
            continue
        counters["opened"] += 1
        try:
            for byte in request:
                if stop.is_set():
                    break
                writer.write(bytes([byte]))
                await writer.drain()
                try:
                    # The server closing shows as EOF or a reset.
                    data = await asyncio.wait_for(reader.read(4096), 1)
                    if not data:
                        break
                    counters["answered"] += 1
                    break
                except asyncio.TimeoutError:
                    pass
        except (ConnectionError, OSError):
            pass
        if not stop.is_set():
            counters["closed_by_server"] += 1
            # A slowloris keeps its connections open; it does not hammer.
            await asyncio.sleep(1)
        writer.close()


def summary(latencies):
    s = sorted(latencies)
    if not s:
        return "no requests"
    p = lambda q: s[min(len(s) - 1, int(q * len(s)))] * 1000  # noqa: E731
    return f"{len(s)} requests, p50 {p(0.5):.1f} ms, p99 {p(0.99):.1f} ms, max {s[-1] * 1000:.1f} ms"


async def slowloris(url, pid, conns, seconds):
    host, port = url.removeprefix("http://").split(":")
    port = int(port)
    idle = fds(pid)
    stop = asyncio.Event()
    counters = {"opened": 0, "closed_by_server": 0, "connect_failed": 0, "answered": 0}
    tasks = [asyncio.create_task(trickler(host, port, stop, counters)) for _ in range(conns)]
    await asyncio.sleep(2)  # let the flood build up before probing
    # The probe runs in a process of its own, so that it measures the
    # server and not this busy event loop.
    prober = await asyncio.create_subprocess_exec(
        sys.executable, __file__, "probe", url, str(pid), str(seconds),
        stdout=asyncio.subprocess.PIPE)
    peak = 0
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        peak = max(peak, fds(pid))
        await asyncio.sleep(0.5)
    out, _ = await prober.communicate()
    result = json.loads(out)
    latencies, failures = result["latencies"], result["failures"]
    stop.set()
    await asyncio.gather(*tasks, return_exceptions=True)
    await asyncio.sleep(3)
    after = fds(pid)
    print(f"slowloris: {conns} trickling connections for {seconds} s")
    print(f"  probe: {summary(latencies)}, {len(failures)} failed {failures[:3]}")
    print(f"  flood: {counters}")
    print(f"  server descriptors: idle {idle}, peak {peak}, 3 s after {after}")
    return {"max_ms": max(latencies) * 1000 if latencies else None, "failures": len(failures),
            "fd_idle": idle, "fd_peak": peak, "fd_after": after}


def post(url, path, body, token):
    req = urllib.request.Request(url + path, data=json.dumps(body).encode(), method="POST",
                                 headers={"content-type": "application/json",
                                          "authorization": f"Bearer {token}"})
    with urllib.request.urlopen(req) as r:
        return json.load(r)


async def search(url, pid, token, batches, files, parallel, seconds):
    host, port = url.removeprefix("http://").split(":")
    port = int(port)
    name = "n" * 200
    for b in range(batches):
        body = {"message": f"amplification {b}", "files": {
            f"{name}-{b}-{i}": {"size": 1, "digest": f"{b:064x}{i:064x}", "algorithm": "sha512",
                                "visibility": "public"} for i in range(files)}}
        post(url, "/upload", body, token)
    before_rss = rss_kib(pid)
    stop = asyncio.Event()
    sizes = []

    async def searcher():
        request = f"GET /upload?q= HTTP/1.1\r\nhost: {host}\r\nconnection: close\r\n\r\n".encode()
        while not stop.is_set():
            reader, writer = await asyncio.open_connection(host, port)
            writer.write(request)
            sizes.append(len(await reader.read()))
            writer.close()

    latencies, failures = [], []
    tasks = [asyncio.create_task(searcher()) for _ in range(parallel)]
    probe_task = asyncio.create_task(probe(host, port, "/__lbheartbeat__", stop, latencies, failures))
    await asyncio.sleep(seconds)
    stop.set()
    await asyncio.gather(*tasks, probe_task, return_exceptions=True)
    peak = rss_kib(pid, "VmHWM")
    print(f"search: {batches} batches x {files} files ({len(name)}-byte names), {parallel} parallel searches for {seconds} s")
    print(f"  answers: {len(sizes)}, largest {max(sizes) / 1e6:.2f} MB")
    print(f"  server RSS: {before_rss / 1024:.0f} MiB before, peak {peak / 1024:.0f} MiB")
    print(f"  probe: {summary(latencies)}, {len(failures)} failed")


async def probe_alone(url, seconds):
    host, port = url.removeprefix("http://").split(":")
    stop = asyncio.Event()
    latencies, failures = [], []
    task = asyncio.create_task(probe(host, int(port), "/__lbheartbeat__", stop, latencies, failures))
    await asyncio.sleep(seconds)
    stop.set()
    await task
    return {"latencies": latencies, "failures": [str(f) for f in failures]}


def main():
    mode, url, pid = sys.argv[1], sys.argv[2], int(sys.argv[3])
    if mode == "probe":
        print(json.dumps(asyncio.run(probe_alone(url, int(sys.argv[4])))))
    elif mode == "slowloris":
        conns, seconds = int(sys.argv[4]), int(sys.argv[5])
        asyncio.run(slowloris(url, pid, conns, seconds))
    else:
        token, batches, files, parallel, seconds = sys.argv[4], *map(int, sys.argv[5:9])
        asyncio.run(search(url, pid, token, batches, files, parallel, seconds))


if __name__ == "__main__":
    main()
