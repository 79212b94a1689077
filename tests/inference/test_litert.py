"""int8 export: float fallback where int8 computes the logits wrongly (``litert``)."""

from __future__ import annotations

import numpy as np

from videoclf.inference.litert import TOLERATED_ERROR, Trace, _fallback_step


def _trace(errors: dict[str, float], feeds: dict[str, set[str]]) -> Trace:
    return Trace(errors, feeds, outputs=("logits",))


# input -> diff -> stem -> pool_m -> join -> logits;  input -> rgb -> pool_a -> join
FEEDS = {"diff": {"input"}, "stem": {"diff"}, "pool_m": {"stem"}, "rgb": {"input"},
         "pool_a": {"rgb"}, "join": {"pool_m", "pool_a"}, "logits": {"join"}}


def test_a_tensor_off_by_more_than_the_tolerated_error_falls_back_to_float():
    errors = {"input": 0, "diff": 0.02, "stem": 0.3, "pool_m": 1.5, "rgb": 0.01,
              "pool_a": 0.03, "join": 1.2, "logits": 1.4}
    assert _fallback_step(_trace(errors, FEEDS), set()) == {"stem", "pool_m", "join", "logits"}


def test_a_float_tensor_still_off_sends_what_it_is_computed_from_to_float():
    """The stem, already float, is still off: its error comes from the quantised frame
    difference (small by its own measure, 0.02), which goes next, as does the quantised
    pool_a the float join reads; nothing already float comes back, and nothing behind a
    quantised tensor (rgb, behind pool_a) is reached."""
    errors = {"input": 0, "diff": 0.02, "stem": 0.3, "pool_m": 1.5, "rgb": 0.01,
              "pool_a": 0.03, "join": 1.2, "logits": 1.4}
    floats = {"stem", "pool_m", "join", "logits"}
    assert _fallback_step(_trace(errors, FEEDS), floats) == {"diff", "pool_a"}
    fixed = dict(errors, stem=0.01, pool_m=0.01, join=0.01, logits=0.01)
    assert _fallback_step(_trace(fixed, FEEDS), floats) == set()
    assert _trace(fixed, FEEDS).logits_error < TOLERATED_ERROR < _trace(errors, FEEDS).logits_error


def test_the_exported_int8_model_keeps_its_logits_near_float_on_clips_it_was_not_fitted_on(
        exported, tiny_model, tiny_manifest, tiny_videos):
    """The export stage's int8 file against a float conversion of the same SavedModel, on
    test clips (the fallback was chosen on training clips)."""
    import tensorflow as tf

    from videoclf.artifacts import SAVED_MODEL, TFLITE_FILES
    from videoclf.inference.litert import float_outputs, trace
    from videoclf.inference.predictors import read_info
    from videoclf.inference.scoring import sample_videos

    info = read_info(tiny_model)
    paths = [tiny_videos / v for v in tiny_manifest[tiny_manifest.split == "test"].video]
    clips = np.concatenate([c for _, c, _ in sample_videos(paths, info.sampling, 1, workers=1)])
    plain = tf.lite.TFLiteConverter.from_saved_model(str(exported / SAVED_MODEL)).convert()
    int8 = (exported / TFLITE_FILES["int8"]).read_bytes()
    seen = trace(float_outputs(plain, clips[:8]), int8, clips[:8])
    assert seen.logits_error < TOLERATED_ERROR  # 0.049 measured (0.076 on the training clips)
