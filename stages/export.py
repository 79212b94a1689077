"""Stage export: the MODEL folder as a SavedModel, ONNX and TFLite (int8 calibrated on FRAMES'
training clips), with labels and sampling, into EXPORT; every format's size, speed and test
accuracy on VIDEOS into EXPORT_METRICS."""

from videoclf.artifacts import read_manifest
from videoclf.stage import run


def main(p, a) -> None:
    from videoclf.inference.export import export  # TensorFlow loads after the checks
    from videoclf.inference.export_report import compare_formats

    export(a.model, a.export, a.frames)
    compare_formats(a.model, a.export, read_manifest(a.videos), a.videos, a.export_metrics)


if __name__ == "__main__":
    run("export", main, inputs=["model", "frames", "videos"],
        outputs=["export", "export_metrics"])
