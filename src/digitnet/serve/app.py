"""The HTTP API and the draw-a-digit page, as one Starlette (ASGI) app served by uvicorn.

    GET  /                the page: draw a digit, watch the prediction and the ten confidences
    GET  /inside          the look-inside page: every layer's activations while you draw
    GET  /api/health      model, recipe, data set, test accuracy
    POST /api/predict     an image (image/png, image/jpeg, ... or multipart field "image"),
                          or JSON {"pixels": 28 rows of 28 values 0-255, "prepare": true}
    POST /api/inspect     the same inputs (one digit): every layer's activations, the outputs, and
                          which last-layer units pushed the answer up and down
    GET  /api/units/<n>   unit n of the first layer: its incoming weights (28x28; a CNN: its 3x3 kernel)

Every error is a JSON {"error": "..."} with a 4xx status; the server keeps serving. Memory is
bounded per worker: at most DECODE_SLOTS large images are decoded at once, each at most
MAX_PIXELS, and freed memory goes back to the system. A client must send its request head and
body within --request-timeout seconds.
"""

from __future__ import annotations

import ctypes
import io
import json
from pathlib import Path

import anyio
import numpy as np
import torch
from PIL import Image
from starlette.applications import Starlette
from starlette.datastructures import Headers
from starlette.exceptions import HTTPException
from starlette.formparsers import MultiPartException, MultiPartParser
from starlette.requests import Request
from starlette.responses import FileResponse, JSONResponse
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles

from digitnet.imageprep import ImageError, PreparedDigit, prepare, read_digits
from digitnet.inside import first_layer, look_inside
from digitnet.model import describe
from digitnet.predict import Predictor
from digitnet.runs import read_metrics
from digitnet.settings import SIDE

STATIC = Path(__file__).parent / "static"
MAX_BODY_BYTES = 2 * 1024 * 1024
MAX_PIXELS = 16_000_000  # a 2 MB PNG of one colour can claim far more pixels than that
DECODE_SLOTS = 2  # large images decoded at once per worker: each holds up to ~100 MB while it is read
DEFAULT_REQUEST_TIMEOUT = 30.0  # seconds a client has to send its request head, and then its body
# Images up to this size (a 280x280 canvas is 0.08 MP) are predicted on the event loop: about a
# millisecond, less than a hop to a worker thread costs under load. Larger ones go to a thread.
INLINE_PIXELS = 1_000_000
IMAGE_TYPES = {"image/png", "image/jpeg", "image/gif", "image/bmp", "image/webp", "image/tiff"}
ACCEPTED_TYPES = IMAGE_TYPES | {"multipart/form-data", "application/json"}
ACCEPTED = ", ".join(sorted(ACCEPTED_TYPES))


class ApiError(Exception):
    def __init__(self, status: int, message: str):
        self.status, self.message = status, message


async def _read_capped(request: Request, seconds: float) -> bytes:
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > MAX_BODY_BYTES:
        raise ApiError(413, f"request body of {int(declared):,} bytes exceeds the {MAX_BODY_BYTES:,}-byte limit")
    chunks, size = [], 0
    try:
        with anyio.fail_after(seconds):
            async for chunk in request.stream():
                size += len(chunk)
                if size > MAX_BODY_BYTES:
                    raise ApiError(413, f"request body exceeds the {MAX_BODY_BYTES:,}-byte limit")
                chunks.append(chunk)
    except TimeoutError:
        raise ApiError(408, f"the request body did not arrive within {seconds:g} s") from None
    return b"".join(chunks)


def _pixel_problem(value) -> str | None:
    """What keeps value from being 28 lists of 28 plain numbers, checked before numpy sees it (a
    401-digit integer or a nested structure must be a 422, not an overflow)."""
    if not isinstance(value, list) or not all(isinstance(row, list) for row in value):
        return "pixels must be 28 rows of 28 numbers"
    if len(value) != SIDE or any(len(row) != SIDE for row in value):
        widths = sorted({len(row) for row in value})
        return f"pixels must be 28 rows of 28 numbers, got shape {[len(value), *widths]}"
    if not all(type(v) in (int, float) and -1e9 < v < 1e9 for row in value for v in row):
        return "pixel values must be numbers from 0 to 255"
    return None


def _pixels_from_json(body: bytes) -> tuple[np.ndarray, bool]:
    try:
        payload = json.loads(body)
    except (ValueError, UnicodeDecodeError, RecursionError):
        raise ApiError(400, "body is not valid JSON (or is nested too deeply)") from None
    if not isinstance(payload, dict) or "pixels" not in payload:
        raise ApiError(422, 'JSON must be an object {"pixels": [[...28 values...], ... 28 rows]}')
    problem = _pixel_problem(payload["pixels"])
    if problem:
        raise ApiError(422, problem)
    pixels = np.array(payload["pixels"], dtype=np.float64)
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


def _memory_returner():
    """A function that hands freed heap memory back to the system (glibc), after fixing glibc's
    mmap threshold at 1 MiB and its arenas at two, so that the large blocks of a decoded image are
    mapped and unmapped rather than kept in per-thread arenas; a no-op elsewhere."""
    try:
        libc = ctypes.CDLL("libc.so.6")
        libc.mallopt(-3, 1 << 20)  # M_MMAP_THRESHOLD
        libc.mallopt(-8, 2)  # M_ARENA_MAX
        return lambda: libc.malloc_trim(0)
    except (OSError, AttributeError):
        return lambda: None


class _DigitReader:
    """A request's body -> prepared digits, within one worker's limits: a body deadline, and at
    most DECODE_SLOTS large images decoded at once, their memory handed back afterwards."""

    def __init__(self, request_timeout: float):
        self.request_timeout = request_timeout
        self.decode_slots = anyio.CapacityLimiter(DECODE_SLOTS)
        self.give_back_memory = _memory_returner()

    async def digits(self, request: Request, one: bool) -> list[PreparedDigit]:
        """The digits of an image or JSON body, left to right (one: all ink as one digit)."""
        content_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
        if content_type not in ACCEPTED_TYPES:
            raise ApiError(415, f"unsupported content type {content_type or '(none)'!r}; send one of {ACCEPTED}")
        body = await _read_capped(request, self.request_timeout)
        if not body:
            raise ApiError(400, "empty request body")
        if content_type == "application/json":
            pixels, prepare_it = _pixels_from_json(body)
            return [prepare(pixels) if prepare_it else PreparedDigit(pixels.round().astype(np.uint8), False)]
        if content_type == "multipart/form-data":
            body = await _image_bytes_from_form(request, body)
        if _pixel_count(body) <= INLINE_PIXELS:  # about a millisecond: less than a hop to a thread costs
            return read_digits(body, "image", MAX_PIXELS, one)
        return await anyio.to_thread.run_sync(self._decode_large, body, one, limiter=self.decode_slots)

    def _decode_large(self, body: bytes, one: bool) -> list[PreparedDigit]:
        try:
            return read_digits(body, "image", MAX_PIXELS, one)
        finally:
            self.give_back_memory()


def _json_route(handler):
    """An API handler returning a dict -> a route answering JSON, errors included."""
    async def route(request: Request):
        try:
            return JSONResponse(await handler(request))
        except ApiError as exc:
            return JSONResponse({"error": exc.message}, status_code=exc.status)
        except ImageError as exc:
            return JSONResponse({"error": str(exc)}, status_code=422)

    return route


def create_app(run_dir: str | Path, request_timeout: float = DEFAULT_REQUEST_TIMEOUT) -> Starlette:
    torch.set_num_threads(1)  # one request per thread: no oversubscription under concurrency
    reader = _DigitReader(request_timeout)
    predictor = Predictor(run_dir)
    config = predictor.config
    layer, unit_weights = first_layer(predictor.model)
    metrics = _last_metrics(run_dir)
    health = {
        "status": "ok", "model": Path(run_dir).resolve().name, "recipe": config["recipe"]["name"],
        "dataset": config["data"]["name"], "architecture": config["architecture"],
        "network": describe(config["architecture"]),
        "test_accuracy": metrics.get("test_accuracy"), "epochs": metrics.get("epoch"),
    }

    def page(name: str):
        async def serve_page(request: Request):
            return FileResponse(STATIC / name, media_type="text/html")

        return serve_page

    async def get_health(request: Request):
        return health

    async def post_predict(request: Request):
        return predictor.predict_prepared(await reader.digits(request, one=False)).to_dict()

    async def post_inspect(request: Request):
        digit = (await reader.digits(request, one=True))[0]
        return look_inside(predictor.model, digit.pixels, predictor.loss)

    async def get_unit(request: Request):
        unit = request.path_params["unit"]
        if not 0 <= unit < len(unit_weights):
            raise ApiError(404, f"{layer} has units 0-{len(unit_weights) - 1}, not {unit}")
        return {"layer": layer, "unit": unit, "units": len(unit_weights),
                "weights": np.round(unit_weights[unit].astype(np.float64), 6).tolist()}

    async def http_error(request: Request, exc: HTTPException):
        return JSONResponse({"error": exc.detail}, status_code=exc.status_code)

    async def unexpected_error(request: Request, exc: Exception):
        """A defect of ours: still a JSON answer, and the server goes on."""
        return JSONResponse({"error": f"internal error ({type(exc).__name__}); please report it"}, status_code=500)

    routes = [
        Route("/", page("index.html")),
        Route("/inside", page("inside.html")),
        Route("/api/health", _json_route(get_health)),
        Route("/api/predict", _json_route(post_predict), methods=["POST"]),
        Route("/api/inspect", _json_route(post_inspect), methods=["POST"]),
        Route("/api/units/{unit:int}", _json_route(get_unit)),
        Mount("/static", StaticFiles(directory=STATIC), name="static"),
    ]
    return Starlette(routes=routes, exception_handlers={HTTPException: http_error, Exception: unexpected_error})


def _last_metrics(run_dir) -> dict:
    rows = read_metrics(run_dir) if (Path(run_dir) / "metrics.csv").exists() else []
    return rows[-1] if rows else {}
