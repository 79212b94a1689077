"""Stage weights: the image backbone's weights file (model.appearance_weights: the library's
ImageNet file, a URL or a path) into WEIGHTS with its SHA-256, checked to load into
model.appearance_backbone; only the record for `none` or the (2+1)D body. Runs on every
`dvc repro` (a local file may change under the same path) and keeps a file already in place
with the hash asked for, so downstream stages rerun only when the weights' bytes change."""

from videoclf.stage import run


def main(p, a) -> None:
    from videoclf.training.backbones.weights import prepare_weights  # TensorFlow: when needed

    m = p.model
    prepare_weights(a.weights, m.appearance_backbone, m.appearance_weights,
                    m.appearance_weights_sha256, p.data.stall_seconds)


if __name__ == "__main__":
    run("weights", main, outputs=["weights"])
