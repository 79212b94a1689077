"""python -m videoclf serve: real HTTP on 127.0.0.1 against the exported ONNX model, with
TensorFlow made impossible to import."""

from __future__ import annotations

import json
import socket
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor

import pytest
import requests

from helpers import without_tensorflow


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def service(exported, tmp_path_factory):
    port = _free_port()
    folder = tmp_path_factory.mktemp("service")
    log = (folder / "serve.log").open("w")  # a file, not a pipe no one drains
    proc = subprocess.Popen([sys.executable, "-m", "videoclf", "serve", "--model",
                             str(exported / "model.onnx"), "--port", str(port), "--max-mb", "8",
                             "--workers", "4"], env=without_tensorflow(folder / "no_tf"),
                            stdout=log, stderr=subprocess.STDOUT, text=True)
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 120
    while True:
        try:
            if requests.get(f"{url}/health", timeout=2).ok:
                break
        except requests.ConnectionError:
            pass
        if proc.poll() is not None or time.monotonic() > deadline:
            proc.kill()
            pytest.fail(f"serve did not start: {(folder / 'serve.log').read_text()[-3000:]}")
        time.sleep(0.3)
    yield url
    proc.terminate()
    proc.wait(timeout=30)
    log.close()
    print((folder / "serve.log").read_text()[-3000:])


def _video(tiny_videos):
    return sorted(tiny_videos.rglob("*.avi"))[0]


def _post(url, body, **kw):
    return requests.post(f"{url}/predict", data=body, timeout=120,
                         headers={"Content-Type": "application/octet-stream"}, **kw)


def test_an_upload_gets_predicts_answer(service, exported, tiny_videos, tmp_path):
    video = _video(tiny_videos)
    r = _post(service, video.read_bytes())
    assert r.status_code == 200, r.text
    got = r.json()
    cli = subprocess.run([sys.executable, "-m", "videoclf", "predict", str(video), "--json",
                          "--model", str(exported / "model.onnx"), "--workers", "1"],
                         capture_output=True, text=True, timeout=300,
                         env=without_tensorflow(tmp_path / "no_tf"))
    want = json.loads(cli.stdout.strip().splitlines()[-1])["top_k"]
    assert [x["label"] for x in got["top_k"]] == [x["label"] for x in want]
    assert max(abs(a["probability"] - b["probability"])
               for a, b in zip(got["top_k"], want)) < 1e-5
    with video.open("rb") as f:  # the same as a multipart form
        form = requests.post(f"{service}/predict", files={"video": (video.name, f)}, timeout=120)
    assert form.status_code == 200 and form.json()["top_k"] == got["top_k"]
    assert form.json()["video"] == video.name
    health = requests.get(f"{service}/health", timeout=10).json()
    assert health["status"] == "ok" and len(health["labels"]) == 3


@pytest.mark.parametrize("body, status, words", [
    (b"", 400, "empty upload"),
    (b"this is not a video at all" * 100, 415, "not a video"),
    (b"\0" * (9 * 2**20), 413, "larger than the 8 MB"),
])
def test_a_bad_upload_is_a_4xx_naming_the_problem(service, body, status, words):
    r = _post(service, body)
    assert r.status_code == status, r.text
    assert words in r.json()["error"]


def test_a_damaged_video_and_a_path_request_are_refused(service, tiny_videos):
    data = _video(tiny_videos).read_bytes()
    r = _post(service, data[: len(data) // 4])
    assert r.status_code == 422 and "damaged video" in r.json()["error"], r.text
    r = requests.post(f"{service}/predict", json={"path": "/etc/passwd"}, timeout=30)
    assert r.status_code == 403 and "--allow-paths" in r.json()["error"]


def test_ten_concurrent_uploads_all_answered_alike(service, tiny_videos):
    """Each answer is the one the same video gets alone (no request sees another's clips)."""
    videos = sorted(tiny_videos.rglob("*.avi"))[:5]
    alone = [_post(service, v.read_bytes()).json()["top_k"] for v in videos]
    with ThreadPoolExecutor(10) as pool:
        answers = list(pool.map(lambda v: _post(service, v.read_bytes()), videos * 2))
    assert all(a.status_code == 200 for a in answers), [a.text for a in answers]
    assert [a.json()["top_k"] for a in answers] == alone * 2


@pytest.fixture(scope="module")
def strict_service(exported, tiny_videos):
    """The service's app in this process (ONNX), on 127.0.0.1 in a thread of its own, with
    tight limits: 2 bodies at once, 64 KB/s after a 1 s grace, 0.2 s of video at most,
    paths allowed under the tiny videos' folder."""
    import asyncio
    import threading

    from aiohttp import web

    from videoclf.inference.predictors import load_predictor
    from videoclf.inference.service import Limits, Scorer, make_app

    predict, info = load_predictor(exported / "model.onnx")
    limits = Limits(8 * 2**20, 0.2, max_uploads=2, min_rate=64 * 1024, body_seconds=30,
                    rate_grace_s=1.0)
    app = make_app(Scorer(predict, info, limits, 2, 3), tiny_videos, workers=2)
    loop, port, ready = asyncio.new_event_loop(), _free_port(), threading.Event()
    runner = web.AppRunner(app)

    def run():
        asyncio.set_event_loop(loop)
        loop.run_until_complete(runner.setup())
        loop.run_until_complete(web.TCPSite(runner, "127.0.0.1", port).start())
        ready.set()
        loop.run_forever()

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    assert ready.wait(30)
    yield f"http://127.0.0.1:{port}", port
    asyncio.run_coroutine_threadsafe(runner.cleanup(), loop).result(30)
    loop.call_soon_threadsafe(loop.stop)
    thread.join(30)


def _slow_client(port: int) -> socket.socket:
    """Headers complete, a body of 1 MB declared, then 1 byte."""
    s = socket.create_connection(("127.0.0.1", port), timeout=30)
    s.sendall(b"POST /predict HTTP/1.1\r\nHost: x\r\nContent-Type: application/octet-stream\r\n"
              b"Content-Length: 1000000\r\n\r\nx")
    return s


def test_slow_bodies_are_timed_out_and_capped_while_the_rest_is_served(strict_service):
    """Two slow clients hold the two upload slots; a third upload is 503 at once, /health
    still answers; each slow one trickling a byte every 0.3 s is 408 after the 1 s grace,
    its connection closed; then uploads are taken again."""
    url, port = strict_service
    slow = [_slow_client(port) for _ in range(2)]
    time.sleep(0.3)
    assert requests.post(f"{url}/predict", data=b"x" * 1000, timeout=10).status_code == 503
    assert requests.get(f"{url}/health", timeout=10).ok
    t0, answers = time.monotonic(), []
    for s in slow:
        s.settimeout(0.3)
    while len(answers) < 2 and time.monotonic() - t0 < 20:
        for s in slow:
            try:
                s.sendall(b"x")
                got = s.recv(4096)
                if got:
                    answers.append(got)
            except (TimeoutError, OSError):
                pass
    assert len(answers) == 2 and all(b" 408 " in a.split(b"\r\n")[0] for a in answers)
    assert time.monotonic() - t0 < 10
    for s in slow:
        s.close()
    r = requests.post(f"{url}/predict", data=b"not a video" * 100, timeout=30)
    assert r.status_code == 415  # a slot is free again: the upload was read and judged


def test_malformed_multipart_is_a_400_not_a_traceback(strict_service):
    url, _ = strict_service
    r = requests.post(f"{url}/predict", data=b"--x\r\n\r\nabc",
                      headers={"Content-Type": "multipart/form-data"}, timeout=30)
    assert r.status_code == 400 and "malformed multipart" in r.json()["error"], r.text
    body = b"--b\r\nthis is no header\r\n\r\nabc\r\n--b--\r\n"
    r = requests.post(f"{url}/predict", data=body,
                      headers={"Content-Type": "multipart/form-data; boundary=b"}, timeout=30)
    assert r.status_code == 400 and "malformed multipart" in r.json()["error"], r.text


def test_max_seconds_holds_without_a_frame_count_and_paths_are_checked(strict_service,
                                                                        tiny_videos):
    """Raw MJPEG (8 frames, 0.32 s, no frame count in its header) under a 0.2 s limit: 422,
    counted while decoding. Path bodies with a NUL byte or a 5,000-character name: 400 and
    404 JSON; a real file under the folder is still too long for 0.2 s."""
    from helpers import ROOT

    url, _ = strict_service
    mjpeg = (ROOT / "tests" / "footage" / "carphone.mjpeg").read_bytes()
    r = _post(url, mjpeg)
    assert r.status_code == 422 and "counted while decoding" in r.json()["error"], r.text
    r = requests.post(f"{url}/predict", json={"path": "a\0b.avi"}, timeout=30)
    assert r.status_code == 400 and "NUL" in r.json()["error"]
    r = requests.post(f"{url}/predict", json={"path": "x" * 5000}, timeout=30)
    assert r.status_code == 404 and "no such file" in r.json()["error"]
    video = _video(tiny_videos).relative_to(tiny_videos)
    r = requests.post(f"{url}/predict", json={"path": str(video)}, timeout=30)
    assert r.status_code == 422 and "more than the 0.2 s" in r.json()["error"], r.text
