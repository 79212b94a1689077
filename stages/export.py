"""Stage export: the MODEL folder as a SavedModel and ONNX, with labels and sampling, into
EXPORT."""

from videoclf.stage import run


def main(p, a) -> None:
    from videoclf.serve.export import export  # TensorFlow loads after the checks

    export(a.model, a.export)


if __name__ == "__main__":
    run("export", main, inputs=["model"], outputs=["export"])
