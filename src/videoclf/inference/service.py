"""``python -m videoclf serve --model PATH --port N``: predict over HTTP (aiohttp).

``POST /predict`` takes a video as the raw body (``application/octet-stream``) or as the
``video`` field of a multipart form and answers predict's JSON for it; with ``--allow-paths
DIR``, a JSON body ``{"path": "..."}`` names a file under DIR instead (off by default: a
service should not read its own disk for whoever asks). ``GET /health`` answers the model's
classes. A bad upload is a 4xx with ``{"error": ...}`` naming the problem: empty (400), too
big (413), not a video (415), too long or damaged (422).

Bounds on what a client can hold: at most ``Limits.max_uploads`` bodies are received at once
(the next is answered 503 at once, so a flood of slow clients holds that many descriptors and
temporary files, not one each); a body must keep coming (no byte for
``Limits.rate_grace_s`` is 408) and, after its first ``rate_grace_s``, arrive at
``Limits.min_rate`` bytes/s or more
on average (408), all of it within ``Limits.body_seconds``. A video whose header gives no
frame count is counted while decoding, up to the frame that passes ``--max-seconds``.

Uploads are streamed to a temporary file (OpenCV decodes files), decoded in a thread pool
(OpenCV releases the GIL) and scored one batch at a time under a lock (a Keras model is not
made for concurrent calls; onnxruntime would be, but the CPU is the limit either way). With
an ONNX model nothing here imports TensorFlow.
"""

from __future__ import annotations

import asyncio
import logging
import os
import tempfile
import threading
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

from aiohttp import web
from aiohttp.http_exceptions import HttpProcessingError

from ..artifacts import ModelInfo
from ..video import VideoError, open_video
from .scoring import sample_video, softmax, top_k, video_probs
from .timeline.windows import header

log = logging.getLogger(__name__)
_CHUNK = 1 << 16


@dataclass(frozen=True)
class Limits:
    """What one request may cost (``serve``'s flags)."""

    max_bytes: int
    max_seconds: float
    min_decodable: float = 0.5
    max_uploads: int = 32          # bodies received at once
    min_rate: int = 16 * 1024      # bytes/s a body must average after rate_grace_s
    body_seconds: float = 600.0    # the longest a body may take in all
    rate_grace_s: float = 10.0     # a body's first seconds, before its rate is held to
                                   # min_rate; also the longest wait for its next byte


class BadUpload(Exception):
    def __init__(self, status: int, message: str):
        super().__init__(message)
        self.status = status


class Scorer:
    """One video file -> predict's JSON, checked against the limits; thread-safe."""

    def __init__(self, predict, info: ModelInfo, limits: Limits, clips: int, k: int):
        self.predict, self.info, self.limits = predict, info, limits
        self.clips, self.k = clips, k
        self._lock = threading.Lock()

    def __call__(self, path: Path, name: str) -> dict:
        try:
            fps, declared = header(path)
        except VideoError as e:
            raise BadUpload(415, f"not a video OpenCV can open ({e})") from None
        if declared and declared / fps > self.limits.max_seconds:
            raise BadUpload(422, f"the video lasts {declared / fps:.0f} s, more than the "
                                 f"{self.limits.max_seconds:g} s this service takes")
        if not declared and _longer_than(path, int(self.limits.max_seconds * fps)):
            raise BadUpload(422, f"the video lasts more than the {self.limits.max_seconds:g} s "
                                 "this service takes (counted while decoding: its header "
                                 "gives no frame count)")
        try:
            clips = sample_video(path, self.clips, self.info.sampling,
                                 min_decodable=self.limits.min_decodable)
        except VideoError as e:
            raise BadUpload(422, f"damaged video: {e}") from None
        with self._lock:
            logits = self.predict(clips)
        best = top_k(video_probs(softmax(logits)), self.info.labels, self.k)
        return {"video": name, "top_k": best, "clips": int(len(clips))}


def _longer_than(path: Path, max_frames: int) -> bool:
    """Whether the video has more than ``max_frames`` frames, grabbing (no colour
    conversion) at most one frame past them."""
    cap = open_video(path)
    try:
        for _ in range(max_frames + 1):
            if not cap.grab():
                return False
        return True
    finally:
        cap.release()


def _error(status: int, message: str) -> web.Response:
    resp = web.json_response({"error": message, "status": status}, status=status)
    if status in (408, 413, 503):
        resp.force_close()  # the rest of the body is not read: the connection ends here
    return resp


async def _save_stream(read, dest, limits: Limits) -> int:
    """``await read(n)`` until it gives b"" into ``dest``: at most ``limits.max_bytes``
    bytes, no wait longer than ``limits.rate_grace_s``, at ``limits.min_rate`` bytes/s on
    average after the first ``rate_grace_s``, all within ``limits.body_seconds``."""
    loop = asyncio.get_running_loop()
    size, start = 0, loop.time()
    while True:
        elapsed = loop.time() - start
        wait = min(limits.rate_grace_s, limits.body_seconds - elapsed)
        try:
            chunk = await asyncio.wait_for(read(_CHUNK), max(0.0, wait))
        except TimeoutError:
            raise BadUpload(408, f"the body stopped coming (nothing for {wait:.0f} s, or past "
                                 f"the {limits.body_seconds:g} s a body may take)") from None
        if not chunk:
            return size
        size += len(chunk)
        if size > limits.max_bytes:
            raise BadUpload(413, f"the upload is larger than the {limits.max_bytes // 2**20} "
                                 "MB this service takes (--max-mb)")
        dest.write(chunk)
        elapsed = loop.time() - start
        if elapsed > limits.rate_grace_s and size < limits.min_rate * elapsed:
            raise BadUpload(408, f"the body arrives at {size / elapsed:.0f} bytes/s, under "
                                 f"the {limits.min_rate // 1024} KB/s this service takes")


class _Handlers:
    def __init__(self, scorer: Scorer, allow_dir: Path | None, workers: int):
        self.scorer, self.allow_dir = scorer, allow_dir
        self.pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="score")
        self.tmp = tempfile.TemporaryDirectory(prefix="videoclf-serve-")
        self.receiving = 0  # bodies being received now (Limits.max_uploads at most)

    async def health(self, request: web.Request) -> web.Response:
        info = self.scorer.info
        return web.json_response({"status": "ok", "labels": info.labels, "run": info.run})

    async def predict(self, request: web.Request) -> web.Response:
        try:
            return web.json_response(await self._predict(request))
        except BadUpload as e:
            log.info("serve: %s %s", e.status, e)
            return _error(e.status, str(e))

    async def _predict(self, request: web.Request) -> dict:
        limit = self.scorer.limits.max_bytes
        if request.content_length is not None and request.content_length > limit:
            raise BadUpload(413, f"the upload is larger than the {limit // 2**20} MB this "
                                 "service takes (--max-mb)")
        if request.content_type == "application/json":
            return await self._by_path(request)
        if self.receiving >= self.scorer.limits.max_uploads:
            raise BadUpload(503, f"{self.receiving} uploads are being received; try again "
                                 "shortly")
        self.receiving += 1
        fd, name = tempfile.mkstemp(dir=self.tmp.name, suffix=".video")
        try:
            try:
                with os.fdopen(fd, "wb") as f:
                    label = await self._receive(request, f)
            finally:
                self.receiving -= 1
            loop = asyncio.get_running_loop()
            return await loop.run_in_executor(self.pool, self.scorer, Path(name), label)
        finally:
            os.unlink(name)

    async def _receive(self, request: web.Request, f) -> str:
        """The upload into ``f``; returns the name to answer with."""
        label = request.query.get("name", "upload")
        limits = self.scorer.limits
        if request.content_type.startswith("multipart/"):
            try:
                label, size = await self._multipart(request, f, label)
            except (ValueError, HttpProcessingError) as e:  # no boundary, a bad part header
                message = getattr(e, "message", None) or str(e) or type(e).__name__
                raise BadUpload(400, f"malformed multipart body: {message}") from None
        else:
            size = await _save_stream(request.content.read, f, limits)
        if size == 0:
            raise BadUpload(400, "empty upload: send the video's bytes as the request body")
        return label

    async def _multipart(self, request: web.Request, f, label: str) -> tuple[str, int]:
        reader = await request.multipart()
        async for part in reader:
            if getattr(part, "name", None) == "video":
                label = part.filename or label  # type: ignore[union-attr]
                return label, await _save_stream(part.read_chunk,  # type: ignore[union-attr]
                                                 f, self.scorer.limits)
        raise BadUpload(400, "a multipart upload needs a 'video' field")

    async def _by_path(self, request: web.Request) -> dict:
        if self.allow_dir is None:
            raise BadUpload(403, "this service takes uploads only (start it with "
                                 "--allow-paths DIR to predict files under DIR by path)")
        try:
            path = Path((await request.json())["path"])
        except (ValueError, KeyError, TypeError):
            raise BadUpload(400, 'a JSON body must be {"path": "..."}') from None
        if "\0" in str(path):
            raise BadUpload(400, "a path cannot hold a NUL byte")
        try:
            full = (self.allow_dir / path).resolve()
            found = full.is_relative_to(self.allow_dir) and full.is_file()
        except OSError:  # a name too long, a loop of links
            found = False
        if not found:
            shown = str(path) if len(str(path)) <= 200 else f"{str(path)[:200]}..."
            raise BadUpload(404, f"{shown}: no such file under the allowed folder")
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self.pool, self.scorer, full, str(path))


def make_app(scorer: Scorer, allow_dir: Path | None = None, workers: int = 4
             ) -> web.Application:
    h = _Handlers(scorer, allow_dir.resolve() if allow_dir else None, workers)
    # aiohttp's own limit, for multipart bodies read by it: the upload limit plus headers.
    app = web.Application(client_max_size=scorer.limits.max_bytes + (1 << 20))
    app.add_routes([web.get("/health", h.health), web.post("/predict", h.predict)])

    async def close(_app: web.Application) -> None:
        h.pool.shutdown(wait=False, cancel_futures=True)
        h.tmp.cleanup()

    app.on_cleanup.append(close)
    return app


def serve(model: Path, host: str, port: int, limits: Limits, clips: int | None, k: int,
          allow_dir: Path | None, workers: int) -> None:
    from .predictors import load_predictor

    predict, info = load_predictor(model)
    scorer = Scorer(predict, info, limits, clips or info.clips_per_video, k)
    app = make_app(scorer, allow_dir, workers)
    log.info("serve: %s (%d classes) on http://%s:%d  POST /predict, GET /health", model,
             len(info.labels), host, port)
    web.run_app(app, host=host, port=port, print=None, access_log=None,
                handle_signals=True)
