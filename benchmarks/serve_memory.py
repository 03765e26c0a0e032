"""Server memory under hostile and long loads: peak and settled RSS of every worker.

    python benchmarks/serve_memory.py [--run RUN] [--workers 2] [--attackers 100] [--mixed 6000]

1. The decompression attack: --attackers clients at once each upload one PNG of 132 KB that
   decodes to 4000x4000 RGBA with 16 bits per channel (128 MB of samples).
2. --mixed requests of every kind in turn (small PNG digits, a 2000x1500 JPEG photo, JSON pixels,
   bad bodies) from 8 clients, to see whether memory creeps up.
After each phase the workers idle for a few seconds and their RSS is read again ("settled").
Without --run, a tutorial-recipe model is trained first on mnist-10k from ../shared/data.
Linux only (reads /proc).
"""

from __future__ import annotations

import argparse
import io
import json
import socket
import struct
import subprocess
import sys
import tempfile
import threading
import time
import zlib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT.parent / "shared" / "data" / "mnist-t10k"


def png_rgba16(width: int, height: int) -> bytes:
    """A PNG of 16-bit RGBA (colour type 6, depth 16): black ink of a rough "1" on white; it compresses
    to a few hundred kB however large it claims to be."""
    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)

    white = b"\xff" * 8 * width
    ink_from, ink_to = width // 2 - width // 40, width // 2 + width // 40
    ink = b"\xff" * 8 * ink_from + (b"\x00" * 6 + b"\xff\xff") * (ink_to - ink_from) + b"\xff" * 8 * (width - ink_to)
    compressor = zlib.compressobj(9)
    body = []
    for row in range(height):
        body.append(compressor.compress(b"\x00" + (ink if height // 5 < row < 4 * height // 5 else white)))
    body.append(compressor.flush())
    header = struct.pack(">IIBBBBB", width, height, 16, 6, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", b"".join(body)) + chunk(b"IEND", b"")


def post(port: int, body: bytes, content_type: str, timeout: float = 300) -> int:
    """One POST on its own connection; the status code (0 if the connection failed)."""
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=timeout) as sock:
            sock.sendall((f"POST /api/predict HTTP/1.1\r\nHost: x\r\nContent-Type: {content_type}\r\n"
                          f"Content-Length: {len(body)}\r\nConnection: close\r\n\r\n").encode() + body)
            reply = b""
            while b"\r\n" not in reply:
                part = sock.recv(65536)
                if not part:
                    return 0
                reply += part
            return int(reply.split(b" ", 2)[1])
    except OSError:
        return 0


def rss_mb(pid: int) -> tuple[float, float]:
    """(current RSS, peak RSS) of a process in MB."""
    fields = dict(line.split(":", 1) for line in Path(f"/proc/{pid}/status").read_text().splitlines() if ":" in line)
    return int(fields["VmRSS"].split()[0]) / 1024, int(fields["VmHWM"].split()[0]) / 1024


def workers_of(pid: int) -> list[int]:
    """The worker processes of a `digitnet serve` (itself with one worker), not multiprocessing's helpers."""
    children = [int(c) for c in Path(f"/proc/{pid}/task/{pid}/children").read_text().split()]
    workers = [c for c in children if b"resource_tracker" not in Path(f"/proc/{c}/cmdline").read_bytes()]
    return workers or [pid]


def start_server(run: Path, workers: int) -> tuple[subprocess.Popen, int]:
    proc = subprocess.Popen([sys.executable, "-m", "digitnet", "serve", str(run), "--port", "0", "--workers",
                             str(workers)], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    line = proc.stdout.readline()
    port = int(line.split("http://127.0.0.1:")[1].split("/")[0])
    deadline = time.monotonic() + 120
    while len(workers_of(proc.pid)) < workers or any(post(port, b"{}", "application/json") == 0 for _ in range(1)):
        if time.monotonic() > deadline:
            raise SystemExit("the server did not start")
        time.sleep(0.2)
    time.sleep(2)  # every worker has imported and loaded the model
    return proc, port


def mixed_bodies() -> list[tuple[bytes, str]]:
    import numpy as np
    from PIL import Image

    from digitnet.data import load_dataset

    digits = load_dataset("mnist-10k", DATA, progress=False).x_test[:20]
    bodies = []
    for digit in digits:
        buffer = io.BytesIO()
        Image.fromarray(255 - digit).resize((280, 280)).save(buffer, format="PNG")
        bodies.append((buffer.getvalue(), "image/png"))
    photo = Image.fromarray(np.kron(255 - digits[0], np.ones((60, 60), np.uint8))[:1500, :1680]).convert("RGB")
    buffer = io.BytesIO()
    photo.resize((2000, 1500)).save(buffer, format="JPEG", quality=85)
    bodies.append((buffer.getvalue(), "image/jpeg"))
    bodies.append((json.dumps({"pixels": digits[1].tolist()}).encode(), "application/json"))
    bodies.append((b"\x89PNG\r\n\x1a\n" + b"\x00" * 200, "image/png"))
    bodies.append((b'{"pixels": ' + b"[" * 5000 + b"]" * 5000 + b"}", "application/json"))
    return bodies


def phase(port: int, pids: list[int], name: str, jobs: list[tuple[bytes, str]], clients: int) -> None:
    statuses: dict[int, int] = {}
    lock = threading.Lock()
    queue = list(jobs)
    peak = {pid: 0.0 for pid in pids}
    done = threading.Event()

    def sample():
        while not done.is_set():
            for pid in pids:
                peak[pid] = max(peak[pid], rss_mb(pid)[0])
            time.sleep(0.05)

    def client():
        while True:
            with lock:
                if not queue:
                    return
                body, kind = queue.pop()
            status = post(port, body, kind)
            with lock:
                statuses[status] = statuses.get(status, 0) + 1

    sampler = threading.Thread(target=sample)
    sampler.start()
    started = time.perf_counter()
    threads = [threading.Thread(target=client) for _ in range(clients)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    seconds = time.perf_counter() - started
    time.sleep(5)
    done.set()
    sampler.join()
    settled = {pid: rss_mb(pid)[0] for pid in pids}
    print(f"{name}: {len(jobs)} requests in {seconds:.1f} s, statuses {dict(sorted(statuses.items()))}")
    for pid in pids:
        print(f"  worker {pid}: peak {peak[pid]:.0f} MB, settled {settled[pid]:.0f} MB after 5 s idle")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--run")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--attackers", type=int, default=100)
    parser.add_argument("--mixed", type=int, default=6000)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        run = Path(args.run) if args.run else Path(tmp) / "run"
        if not args.run:
            from digitnet.runs import train

            train("tutorial", "mnist-10k", data_dir=DATA, epochs=1, out=run, progress=False)
        attack = png_rgba16(4000, 4000)
        print(f"attack PNG: {len(attack) / 1024:.0f} KB, decodes to 4000x4000 RGBA 16-bit")
        proc, port = start_server(run, args.workers)
        try:
            pids = workers_of(proc.pid)
            print("idle: " + ", ".join(f"worker {pid} {rss_mb(pid)[0]:.0f} MB" for pid in pids))
            phase(port, pids, "attack", [(attack, "image/png")] * args.attackers, args.attackers)
            if args.mixed:
                bodies = mixed_bodies()
                phase(port, pids, "mixed", [bodies[i % len(bodies)] for i in range(args.mixed)], 8)
        finally:
            proc.terminate()
            proc.wait(timeout=30)


if __name__ == "__main__":
    main()
