"""The HTTP API against the real server (uvicorn) started on a free port on 127.0.0.1."""

import io
import json
import re
import subprocess
import sys
import urllib.error
import urllib.request

import pytest
from PIL import Image
from conftest import TIME_FACTOR

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def server(mnist_run):
    proc = subprocess.Popen([sys.executable, "-m", "digitnet", "serve", str(mnist_run), "--port", "0"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    line = proc.stdout.readline()
    match = re.search(r"http://127\.0\.0\.1:(\d+)/", line)
    assert match, line + proc.stderr.read() if proc.poll() is not None else line
    yield f"http://127.0.0.1:{match.group(1)}"
    proc.terminate()
    proc.wait(timeout=30 * TIME_FACTOR)


def request(url, data=None, content_type=None, method=None):
    headers = {"Content-Type": content_type} if content_type else {}
    req = urllib.request.Request(url, data=data, headers=headers, method=method)
    try:
        with urllib.request.urlopen(req, timeout=30 * TIME_FACTOR) as response:
            return response.status, response.headers.get("content-type"), response.read()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.headers.get("content-type"), exc.read()


def _png(array_or_image, fmt="PNG"):
    image = array_or_image if isinstance(array_or_image, Image.Image) else Image.fromarray(array_or_image)
    buffer = io.BytesIO()
    image.save(buffer, format=fmt)
    return buffer.getvalue()


def test_health(server):
    status, ctype, body = request(server + "/api/health")
    health = json.loads(body)
    assert status == 200 and ctype == "application/json"
    assert health["recipe"] == "best" and health["dataset"] == "mnist-10k" and 0.9 < health["test_accuracy"] <= 1


def test_page_and_its_assets_are_served_locally(server):
    status, ctype, body = request(server + "/")
    assert status == 200 and ctype.startswith("text/html")
    page = body.decode()
    assert '<canvas id="pad"' in page and "/static/app.js" in page and "http" not in page.replace("http-equiv", "")
    for asset in ("/static/app.js", "/static/style.css"):
        assert request(server + asset)[0] == 200


def test_predict_png_upload_multipart_and_json(server, mnist_test_digits):
    digits, labels = mnist_test_digits
    digit, label = digits[0], int(labels[0])
    status, _, body = request(server + "/api/predict", _png(255 - digit), "image/png")
    result = json.loads(body)
    assert status == 200 and result["digit"] == label and len(result["probabilities"]) == 10
    assert len(result["prepared"]) == 28 and all(len(row) == 28 for row in result["prepared"])

    boundary = "digitnetboundary"
    form = (f"--{boundary}\r\nContent-Disposition: form-data; name=\"image\"; filename=\"d.jpg\"\r\n"
            f"Content-Type: image/jpeg\r\n\r\n").encode() + _png(digit, "JPEG") + f"\r\n--{boundary}--\r\n".encode()
    status, _, body = request(server + "/api/predict", form, f"multipart/form-data; boundary={boundary}")
    assert status == 200 and json.loads(body)["digit"] == label

    for prepare_it in (True, False):
        payload = json.dumps({"pixels": digit.tolist(), "prepare": prepare_it}).encode()
        status, _, body = request(server + "/api/predict", payload, "application/json")
        assert status == 200 and json.loads(body)["digit"] == label
    status, _, body = request(server + "/api/predict", json.dumps({"pixels": digit.tolist(), "prepare": False}).encode(),
                              "application/json")
    assert json.loads(body)["prepared"] == digit.tolist()  # taken as it is


@pytest.mark.parametrize(
    ("data", "content_type", "status", "message"),
    [
        (b"hello", "text/plain", 415, "unsupported content type 'text/plain'"),
        (b"hello", None, 415, "unsupported content type"),
        (b"", "image/png", 400, "empty request body"),
        (b"not a png", "image/png", 422, "not an image Pillow can read"),
        (b"{", "application/json", 400, "not valid JSON"),
        (b'{"pixels": [[1, 2]]}', "application/json", 422, "got shape [1, 2]"),
        (b'{"pixels": 5}', "application/json", 422, "28 rows of 28 numbers"),
        (json.dumps({"pixels": [[300] * 28] * 28}).encode(), "application/json", 422, "from 0 to 255"),
        (json.dumps({"pixels": [[0] * 28] * 28}).encode(), "application/json", 422, "no digit found"),
        (b"[1, 2]", "application/json", 422, "JSON must be an object"),
        (b'--x\r\nContent-Disposition: form-data; name="file"\r\n\r\nabc\r\n--x--\r\n',
         "multipart/form-data; boundary=x", 422, 'file field named "image"'),
        (b"--x\r\n\r\n", "multipart/form-data; boundary=x", 400, "malformed multipart body"),
    ],
)
def test_bad_requests_get_json_errors(server, data, content_type, status, message):
    got_status, ctype, body = request(server + "/api/predict", data, content_type, method="POST")
    assert got_status == status and ctype == "application/json"
    assert message in json.loads(body)["error"]


def test_pixel_cap_blank_image_and_wrong_routes(server):
    huge = _png(Image.new("1", (5000, 4000), 1))  # 20 MP in a few kB
    status, _, body = request(server + "/api/predict", huge, "image/png")
    assert status == 422 and "20 MP, more than the 16 MP limit" in json.loads(body)["error"]
    status, _, body = request(server + "/api/predict", _png(Image.new("L", (280, 280), 255)), "image/png")
    assert status == 422 and "no digit found" in json.loads(body)["error"]
    assert request(server + "/api/nothing")[0] == 404
    status, ctype, _ = request(server + "/api/predict")  # GET
    assert status == 405 and ctype == "application/json"
    assert request(server + "/api/health")[0] == 200  # still serving


def test_body_size_cap(server):
    import http.client
    from urllib.parse import urlsplit

    host, port = urlsplit(server).hostname, urlsplit(server).port
    # A declared length over the cap is refused before any body is read.
    conn = http.client.HTTPConnection(host, port, timeout=30 * TIME_FACTOR)
    conn.putrequest("POST", "/api/predict")
    conn.putheader("Content-Type", "image/png")
    conn.putheader("Content-Length", str(3 * 1024 * 1024))
    conn.endheaders()
    response = conn.getresponse()
    assert response.status == 413 and "exceeds the 2,097,152-byte limit" in json.loads(response.read())["error"]
    conn.close()
    # A chunked body with no declared length is counted as it arrives.
    conn = http.client.HTTPConnection(host, port, timeout=30 * TIME_FACTOR)
    chunks = [b"x" * (512 * 1024)] * 4 + [b"x"]
    conn.request("POST", "/api/predict", body=iter(chunks), headers={"Content-Type": "image/png"}, encode_chunked=True)
    response = conn.getresponse()
    assert response.status == 413 and "exceeds the 2,097,152-byte limit" in json.loads(response.read())["error"]
    conn.close()
    assert request(server + "/api/health")[0] == 200


def _start(run, *extra):
    proc = subprocess.Popen([sys.executable, "-m", "digitnet", "serve", str(run), "--port", "0", *extra],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    match = re.search(r"http://127\.0\.0\.1:(\d+)/", proc.stdout.readline())
    assert match, proc.stderr.read()
    return proc, int(match.group(1))


def _closed_within(sock, seconds) -> bool:
    """True if the server closes the connection (or answers) within seconds."""
    import time

    sock.settimeout(seconds)
    started = time.monotonic()
    try:
        sock.recv(1)  # b"" (closed) or the first byte of an answer
    except TimeoutError:
        return False
    return time.monotonic() - started < seconds


def test_slow_clients_are_cut_off(synthetic_run):
    import socket

    proc, port = _start(synthetic_run, "--request-timeout", "1", "--workers", "1")
    try:
        silent = socket.create_connection(("127.0.0.1", port))
        slow_head = socket.create_connection(("127.0.0.1", port))
        slow_head.sendall(b"POST /api/predict HTTP/1.1\r\nHost: x\r\n")  # and never the rest
        assert _closed_within(silent, 10 * TIME_FACTOR) and _closed_within(slow_head, 10 * TIME_FACTOR)
        slow_body = socket.create_connection(("127.0.0.1", port))
        slow_body.sendall(b"POST /api/predict HTTP/1.1\r\nHost: x\r\nContent-Type: image/png\r\n"
                          b"Content-Length: 1000\r\n\r\n\x89PNG")
        slow_body.settimeout(10 * TIME_FACTOR)
        answer = b""
        while b"}" not in answer and (part := slow_body.recv(65536)):
            answer += part
        answer = answer.decode()
        assert answer.startswith("HTTP/1.1 408") and '{"error":"the request body did not arrive within 1 s"}' in answer
        status, _, body = request(f"http://127.0.0.1:{port}/api/health")  # the worker still serves
        assert status == 200
    finally:
        proc.terminate()
        proc.wait(timeout=30 * TIME_FACTOR)


def test_a_decompression_attack_keeps_the_worker_under_600_mb(synthetic_run):
    """30 simultaneous uploads of a 144 KB PNG that decodes to 4000x4000 16-bit RGBA (128 MB of
    samples): decodes are bounded in number and size, and the memory is given back."""
    import threading
    from pathlib import Path

    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))
    from serve_memory import png_rgba16, post, rss_mb

    attack = png_rgba16(4000, 4000)
    proc, port = _start(synthetic_run, "--workers", "1")
    try:
        assert request(f"http://127.0.0.1:{port}/api/health")[0] == 200  # the app has loaded
        idle = rss_mb(proc.pid)[0]
        statuses = []
        clients = [threading.Thread(target=lambda: statuses.append(post(port, attack, "image/png", 300 * TIME_FACTOR)))
                   for _ in range(30)]
        for client in clients:
            client.start()
        for client in clients:
            client.join()
        assert statuses == [200] * 30
        settled, peak = rss_mb(proc.pid)
        assert peak < 600, f"peak RSS {peak:.0f} MB"
        assert settled < idle + 100, f"RSS {settled:.0f} MB after the attack, {idle:.0f} MB before"
    finally:
        proc.terminate()
        proc.wait(timeout=30 * TIME_FACTOR)
