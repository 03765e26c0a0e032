"""The HTTP API and the draw-a-digit page, as one Starlette (ASGI) app served by uvicorn.

    GET  /              the page: draw a digit, watch the prediction and the ten confidences
    GET  /api/health    model, recipe, data set, test accuracy
    POST /api/predict   an image (image/png, image/jpeg, ... or multipart field "image"),
                        or JSON {"pixels": 28 rows of 28 values 0-255, "prepare": true}

Every error is a JSON {"error": "..."} with a 4xx status; the server keeps serving.
"""

from __future__ import annotations

import io
import json
import os
from pathlib import Path

import numpy as np
import torch
import uvicorn
from PIL import Image
from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import Headers
from starlette.exceptions import HTTPException
from starlette.formparsers import MultiPartException, MultiPartParser
from starlette.requests import Request
from starlette.responses import FileResponse, JSONResponse
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles
from uvicorn.supervisors import Multiprocess

from digitnet.errors import DigitnetError
from digitnet.imageprep import ImageError, PreparedDigit, prepare
from digitnet.predict import Predictor
from digitnet.runs import load_run, read_metrics
from digitnet.settings import SIDE

STATIC = Path(__file__).parent / "static"
MAX_BODY_BYTES = 2 * 1024 * 1024
MAX_PIXELS = 16_000_000  # a 2 MB PNG of one colour can claim far more pixels than that
# Images up to this size (a 280x280 canvas is 0.08 MP) are predicted on the event loop: about a
# millisecond, less than a hop to a worker thread costs under load. Larger ones go to a thread.
INLINE_PIXELS = 1_000_000
IMAGE_TYPES = {"image/png", "image/jpeg", "image/gif", "image/bmp", "image/webp", "image/tiff"}
ACCEPTED_TYPES = IMAGE_TYPES | {"multipart/form-data", "application/json"}
ACCEPTED = ", ".join(sorted(ACCEPTED_TYPES))


class ApiError(Exception):
    def __init__(self, status: int, message: str):
        self.status, self.message = status, message


async def _read_capped(request: Request) -> bytes:
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > MAX_BODY_BYTES:
        raise ApiError(413, f"request body of {int(declared):,} bytes exceeds the {MAX_BODY_BYTES:,}-byte limit")
    chunks, size = [], 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > MAX_BODY_BYTES:
            raise ApiError(413, f"request body exceeds the {MAX_BODY_BYTES:,}-byte limit")
        chunks.append(chunk)
    return b"".join(chunks)


def _pixels_from_json(body: bytes) -> tuple[np.ndarray, bool]:
    try:
        payload = json.loads(body)
    except (ValueError, UnicodeDecodeError):
        raise ApiError(400, "body is not valid JSON") from None
    if not isinstance(payload, dict) or "pixels" not in payload:
        raise ApiError(422, 'JSON must be an object {"pixels": [[...28 values...], ... 28 rows]}')
    try:
        pixels = np.array(payload["pixels"], dtype=np.float64)
    except (TypeError, ValueError):
        raise ApiError(422, "pixels must be 28 rows of 28 numbers") from None
    if pixels.shape != (SIDE, SIDE):
        raise ApiError(422, f"pixels must be 28 rows of 28 numbers, got shape {list(pixels.shape)}")
    if not np.isfinite(pixels).all() or pixels.min() < 0 or pixels.max() > 255:
        raise ApiError(422, "pixel values must be numbers from 0 to 255")
    prepare_it = payload.get("prepare", True)
    if not isinstance(prepare_it, bool):
        raise ApiError(422, '"prepare" must be true or false')
    return pixels, prepare_it


async def _image_bytes_from_form(request: Request, body: bytes) -> bytes:
    async def stream():
        yield body

    try:
        form = await MultiPartParser(Headers(scope=request.scope), stream(), max_files=1, max_fields=10).parse()
    except MultiPartException as exc:
        raise ApiError(400, f"malformed multipart body: {exc.message}") from None
    upload = form.get("image")
    if upload is None or isinstance(upload, str):
        raise ApiError(422, 'multipart body needs a file field named "image"')
    return await upload.read()


def _pixel_count(body: bytes) -> int:
    """Width x height from the image header alone (0 if unreadable: the predict call says why)."""
    try:
        with Image.open(io.BytesIO(body)) as image:
            return image.size[0] * image.size[1]
    except Exception:
        return 0


def create_app(run_dir: str | Path) -> Starlette:
    torch.set_num_threads(1)  # one request per thread: no oversubscription under concurrency
    predictor = Predictor(run_dir)
    config = predictor.config
    metrics = _last_metrics(run_dir)
    health = {
        "status": "ok", "model": Path(run_dir).resolve().name, "recipe": config["recipe"]["name"],
        "dataset": config["data"]["name"], "architecture": config["architecture"],
        "test_accuracy": metrics.get("test_accuracy"), "epochs": metrics.get("epoch"),
    }

    async def page(request: Request):
        return FileResponse(STATIC / "index.html", media_type="text/html")

    async def get_health(request: Request):
        return JSONResponse(health)

    async def post_predict(request: Request):
        try:
            content_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
            if content_type not in ACCEPTED_TYPES:
                raise ApiError(415, f"unsupported content type {content_type or '(none)'!r}; send one of {ACCEPTED}")
            body = await _read_capped(request)
            if not body:
                raise ApiError(400, "empty request body")
            if content_type == "application/json":
                pixels, prepare_it = _pixels_from_json(body)
                prepared = prepare(pixels) if prepare_it else PreparedDigit(pixels.round().astype(np.uint8), False)
                reading = predictor.predict_prepared([prepared])  # microseconds: no thread hop
            else:
                if content_type == "multipart/form-data":
                    body = await _image_bytes_from_form(request, body)
                if _pixel_count(body) <= INLINE_PIXELS:
                    reading = predictor.read_image(body, "image", MAX_PIXELS)
                else:  # a big image takes milliseconds to decode: keep the event loop free meanwhile
                    reading = await run_in_threadpool(predictor.read_image, body, "image", MAX_PIXELS)
        except ApiError as exc:
            return JSONResponse({"error": exc.message}, status_code=exc.status)
        except ImageError as exc:
            return JSONResponse({"error": str(exc)}, status_code=422)
        return JSONResponse(reading.to_dict())

    async def http_error(request: Request, exc: HTTPException):
        return JSONResponse({"error": exc.detail}, status_code=exc.status_code)

    routes = [
        Route("/", page),
        Route("/api/health", get_health),
        Route("/api/predict", post_predict, methods=["POST"]),
        Mount("/static", StaticFiles(directory=STATIC), name="static"),
    ]
    return Starlette(routes=routes, exception_handlers={HTTPException: http_error})


def _last_metrics(run_dir) -> dict:
    rows = read_metrics(run_dir) if (Path(run_dir) / "metrics.csv").exists() else []
    return rows[-1] if rows else {}


RUN_ENV = "DIGITNET_SERVE_RUN"


def app_from_environment() -> Starlette:
    """The app factory each worker process calls (uvicorn needs an import string for workers > 1)."""
    return create_app(os.environ[RUN_ENV])


def default_workers() -> int:
    return max(1, min(os.cpu_count() or 1, 4))


def run_server(run_dir: str | Path, host: str = "127.0.0.1", port: int = 8000, workers: int | None = None) -> None:
    """Serve until interrupted; prints the address once listening (the real port when port is 0).

    With several workers, uvicorn binds the socket once and forks worker processes that share it,
    each with its own copy of the model: the CPU-bound preparation then runs on every core.
    """
    load_run(run_dir)  # a bad run folder fails here, with its own message, before anything starts
    workers = default_workers() if workers is None else workers
    if workers < 1:
        raise DigitnetError(f"--workers {workers}: must be at least 1")
    os.environ[RUN_ENV] = str(Path(run_dir).resolve())
    config = uvicorn.Config("digitnet.serve.app:app_from_environment", factory=True, host=host, port=port,
                            workers=workers, log_level="warning", access_log=False)
    try:
        sock = config.bind_socket()
    except (OSError, SystemExit):
        raise DigitnetError(f"could not listen on {host}:{port} (in use, or not an address of this machine); "
                            "choose another --port or --host") from None
    sock.listen(config.backlog)  # connections queue from now on, even before a worker accepts them
    bound = sock.getsockname()[1]
    print(f"digitnet: serving {run_dir} on http://{host}:{bound}/ with {workers} worker"
          f"{'s' if workers > 1 else ''} (Ctrl-C stops)", flush=True)
    if workers == 1:
        uvicorn.Server(config).run(sockets=[sock])
        return
    try:
        supervisor = Multiprocess(config, sockets=[sock])
    except TypeError:  # uvicorn < 0.36 also wants the target
        supervisor = Multiprocess(config, target=uvicorn.Server(config).run, sockets=[sock])
    supervisor.run()
