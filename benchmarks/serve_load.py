"""Serving speed: in-process predict latency, and a bounded HTTP load test on 127.0.0.1.

    python benchmarks/serve_load.py [--run RUN] [--requests 2000] [--clients 8]

Without --run, a best-recipe model is trained first on mnist-10k from ../shared/data (about 5 s).
The load test starts `digitnet serve RUN --port 0` as its own process and sends --requests POSTs of
real MNIST test digits (upscaled to 280x280 PNG, as the page sends them) from --clients threads,
each on one keep-alive connection, and stops after --requests or --max-seconds, whichever first.
"""

from __future__ import annotations

import argparse
import io
import re
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT.parent / "shared" / "data" / "mnist-t10k"


def _pngs(count: int) -> list[bytes]:
    from PIL import Image

    from digitnet.data import load_dataset

    digits = load_dataset("mnist-10k", DATA, progress=False).x_test[:count]
    out = []
    for digit in digits:
        buffer = io.BytesIO()
        Image.fromarray(255 - digit).resize((280, 280), Image.Resampling.BICUBIC).save(buffer, format="PNG")
        out.append(buffer.getvalue())
    return out


def _percentile(values, q):
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q / 100 * len(ordered)))]


def _raw_request(port: int, body: bytes) -> bytes:
    head = (f"POST /api/predict HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nContent-Type: image/png\r\n"
            f"Content-Length: {len(body)}\r\n\r\n")
    return head.encode() + body


def _connect(port: int):
    import socket

    sock = socket.create_connection(("127.0.0.1", port), timeout=30)
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    return sock


def _read_response(sock) -> tuple[int, bytes]:
    """Status and body of one HTTP/1.1 response with a Content-Length."""
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = sock.recv(65536)
        if not chunk:
            raise ValueError("connection closed")
        data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    lines = head.split(b"\r\n")
    status = int(lines[0].split()[1])
    length = next(int(l.split(b":", 1)[1]) for l in lines[1:] if l.lower().startswith(b"content-length:"))
    while len(body) < length:
        chunk = sock.recv(65536)
        if not chunk:
            raise ValueError("connection closed")
        body += chunk
    return status, body


def _wait_until_ready(port: int, warm_request: bytes, clients: int) -> None:
    """Workers load the model after the socket opens: wait for them, then warm every connection."""
    import urllib.request

    deadline = time.monotonic() + 60
    while True:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/api/health", timeout=5):
                break
        except OSError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.1)
    time.sleep(1.0)  # the other workers finish starting too
    for _ in range(4 * clients):
        sock = _connect(port)
        sock.sendall(warm_request)
        _read_response(sock)
        sock.close()


def in_process(run: Path, pngs: list[bytes], repeats: int = 1000) -> dict:
    import numpy as np
    import torch

    from digitnet.imageprep import open_image, prepare
    from digitnet.predict import Predictor

    torch.set_num_threads(1)
    predictor = Predictor(run)
    prepared = prepare(open_image(pngs[0]))

    def timed(fn):
        for _ in range(50):
            fn()
        samples = []
        for i in range(repeats):
            started = time.perf_counter()
            fn()
            samples.append(time.perf_counter() - started)
        return statistics.median(samples) * 1e3, _percentile(samples, 99) * 1e3

    return {
        "network only (prepared 28x28 -> 10 confidences)": timed(lambda: predictor.predict_prepared([prepared])),
        "whole predict (280x280 PNG bytes -> decode, prepare, network)": timed(
            lambda: predictor.predict_image(pngs[np.random.randint(len(pngs))])),
    }


def load_test(run: Path, pngs: list[bytes], requests: int, clients: int, max_seconds: float) -> dict:
    server = subprocess.Popen([sys.executable, "-m", "digitnet", "serve", str(run), "--port", "0"],
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        port = int(re.search(r":(\d+)/", server.stdout.readline()).group(1))
        latencies, errors, lock = [], [], threading.Lock()
        counter = iter(range(requests))
        deadline = time.monotonic() + max_seconds

        requests_bytes = [_raw_request(port, body) for body in pngs]
        _wait_until_ready(port, requests_bytes[0], clients)

        def client(index: int):
            # A lean keep-alive client (prebuilt request bytes, minimal parsing), so that the load
            # generator, which shares this machine's CPUs with the server, takes as little as it can.
            sock = _connect(port)
            for n in counter:
                if time.monotonic() > deadline:
                    break
                started = time.perf_counter()
                try:
                    sock.sendall(requests_bytes[(n + index) % len(requests_bytes)])
                    status, payload = _read_response(sock)
                    ok = status == 200 and b'"digit"' in payload
                except (OSError, ValueError) as exc:
                    ok, payload = False, str(exc).encode()
                    sock.close()
                    sock = _connect(port)
                elapsed = time.perf_counter() - started
                with lock:
                    (latencies if ok else errors).append(elapsed if ok else payload[:200])
            sock.close()

        threads = [threading.Thread(target=client, args=(i,)) for i in range(clients)]
        started = time.perf_counter()
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        wall = time.perf_counter() - started
    finally:
        server.terminate()
        server.wait(timeout=30)
    return {"requests": len(latencies) + len(errors), "errors": len(errors), "seconds": wall,
            "throughput": len(latencies) / wall, "p50_ms": _percentile(latencies, 50) * 1e3,
            "p99_ms": _percentile(latencies, 99) * 1e3, "max_ms": max(latencies) * 1e3}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--run", help="a run folder (default: train a best-recipe model on mnist-10k first)")
    parser.add_argument("--requests", type=int, default=2000)
    parser.add_argument("--clients", type=int, default=8)
    parser.add_argument("--max-seconds", type=float, default=120)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        run = Path(args.run) if args.run else Path(tmp) / "run"
        if not args.run:
            from digitnet.runs import train

            train("best", "mnist-10k", data_dir=DATA, epochs=10, out=run, progress=False)
        pngs = _pngs(200)
        latency = in_process(run, pngs)
        load = load_test(run, pngs, args.requests, args.clients, args.max_seconds)
    import platform

    import torch

    from machine import describe_cpu

    print(f"\n{describe_cpu()}, torch {torch.__version__}, Python {platform.python_version()}")
    print("\n| in-process, one image | median (ms) | p99 (ms) |\n| --- | ---: | ---: |")
    for name, (median, p99) in latency.items():
        print(f"| {name} | {median:.3f} | {p99:.3f} |")
    print(f"\n| HTTP load: {args.clients} clients, 280x280 PNG uploads | value |\n| --- | ---: |")
    for key in ("requests", "errors", "seconds", "throughput", "p50_ms", "p99_ms", "max_ms"):
        value = load[key]
        print(f"| {key} | {value:,.2f} |" if isinstance(value, float) else f"| {key} | {value:,} |")
    return 1 if load["errors"] else 0


if __name__ == "__main__":
    raise SystemExit(main())
