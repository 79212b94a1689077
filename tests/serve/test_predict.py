import json
import subprocess
import sys

from videoclf.data import builtin

from helpers import ROOT


def test_predict_json_table_and_a_broken_file(tiny_model, tmp_path):
    clips = tmp_path / "clips"
    clips.mkdir()
    for cls in ("Flicker", "PanDown"):
        builtin.write_clip(f"UCF101/v_{cls}_g24_c07.avi", 123, clips / f"v_{cls}_g24_c07.avi")
    broken = tmp_path / "broken.avi"
    broken.write_text("this is not a video")
    missing = tmp_path / "missing.avi"
    cmd = [sys.executable, "-m", "videoclf", "predict", str(clips), str(broken), str(missing),
           "--model", str(tiny_model), "--top-k", "2", "--json", "--clips", "2"]
    r = subprocess.run(cmd, capture_output=True, text=True, timeout=300, cwd=tmp_path)
    assert r.returncode == 1  # some files failed...
    lines = [json.loads(line) for line in r.stdout.splitlines()]
    assert len(lines) == 2  # ...but the others were predicted
    labels = json.loads((tiny_model / "labels.json").read_text())
    for obj in lines:
        assert set(obj) == {"video", "top_k"} and len(obj["top_k"]) == 2
        probs = [t["probability"] for t in obj["top_k"]]
        assert probs == sorted(probs, reverse=True) and 0 < sum(probs) <= 1.0 + 1e-6
        assert all(t["label"] in labels for t in obj["top_k"])
    assert f"error: {broken}" in r.stderr and f"error: {missing}: no such file" in r.stderr
    assert "Traceback" not in r.stderr

    (clips / "notes.txt").write_text("not a video")  # left out, and said so
    (clips / "clip.m2v").write_bytes((ROOT / "tests" / "footage" / "carphone.m2v").read_bytes())
    table = subprocess.run([sys.executable, "-m", "videoclf", "predict", str(clips), "--model",
                            str(tiny_model), "--top-k", "3"], capture_output=True, text=True,
                           timeout=300, cwd=tmp_path)
    assert table.returncode == 0, table.stderr
    assert table.stdout.count("  1. ") == 3 and table.stdout.count("  3. ") == 3  # .m2v too
    assert f"note: {clips}: 1 file(s) left out, not videos: .txt 1" in table.stderr


def test_predict_without_model_is_a_clear_error(tmp_path):
    r = subprocess.run([sys.executable, "-m", "videoclf", "predict", "x.avi", "--model",
                        str(tmp_path)], capture_output=True, text=True, timeout=300)
    assert r.returncode == 1 and "labels.json: missing" in r.stderr
