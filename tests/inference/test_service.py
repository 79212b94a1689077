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
