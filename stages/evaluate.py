"""Stage evaluate: test-split metrics of the MODEL on VIDEOS into METRICS (metrics.json,
per_class.json, eval/)."""

from videoclf.artifacts import read_manifest
from videoclf.engine import open_engine
from videoclf.stage import run


def main(p, a) -> None:
    from videoclf.inference.evaluate import evaluate
    from videoclf.inference.predictors import load_predictor  # TensorFlow loads after the checks

    predict, info = load_predictor(a.model)
    with open_engine(p.engine, "evaluate") as engine:
        evaluate(predict, info, read_manifest(a.videos), a.videos, a.metrics, p.evaluate, engine)


if __name__ == "__main__":
    run("evaluate", main, inputs=["videos", "model"], outputs=["metrics"])
