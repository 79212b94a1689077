"""TFLite (LiteRT) models for phones and edge boxes, converted from the exported SavedModel.

``float16``: weights stored as float16 (half the size), computed in float32 on CPUs.
``int8``: post-training full-integer quantisation (weights and activations int8) calibrated on
clips of the training shards (``REPRESENTATIVE`` of them, spread over the classes), float kept
where int8 would make the logits wrong (``int8_with_fallback``); an op with no int8 kernel
stays float too, so the model still runs everywhere LiteRT does. Both take the same
uint8 clips and give float logits, as the Keras, SavedModel and ONNX models do.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..artifacts import TFLITE_FILES, read_index

log = logging.getLogger(__name__)

REPRESENTATIVE = 64  # calibration clips; TensorFlow's guide suggests about 100 samples
TRACE_CLIPS = 8  # of them, the clips int8's error per tensor is measured on
TOLERATED_ERROR = 0.1  # int8's error, as a share of the float tensor's spread, kept in int8
FALLBACK_ROUNDS = 12  # each walks one op further back (the object model: 6, 61 s in all)


def representative_clips(frames_dir: Path, n: int = REPRESENTATIVE) -> np.ndarray:
    """``n`` training clips evenly spaced over every stored training clip (all K of each
    video, the index in its stored order, so the same shards give the same clips),
    ``[n, T, H, W, 3]`` uint8. Every clip, not only each video's first: on the tiny test
    model, int8's mean error against Keras went from 0.042 to 0.031 and a clear top-1 it
    flipped came back (12 clips -> 36)."""
    index, _ = read_index(frames_dir)
    heads = index[index["split"] == "train"].reset_index(drop=True)
    picks = heads.iloc[np.unique(np.linspace(0, len(heads) - 1, min(n, len(heads))).round()
                                 .astype(int))]
    clips = []
    for shard, rows in picks.groupby("shard", sort=False)["row"]:
        arr = np.load(Path(frames_dir) / shard, mmap_mode="r")
        clips += [np.array(arr[r]) for r in rows]
    return np.stack(clips)


def convert(saved_model: Path, kind: str, calibration: np.ndarray) -> bytes:
    """The SavedModel as a ``.tflite`` flatbuffer of ``kind`` (``float16`` or ``int8``)."""
    import tensorflow as tf

    conv = tf.lite.TFLiteConverter.from_saved_model(str(saved_model))
    conv.optimizations = [tf.lite.Optimize.DEFAULT]
    if kind == "float16":
        conv.target_spec.supported_types = [tf.float16]
        return conv.convert()
    if kind == "int8":
        return int8_with_fallback(saved_model, conv, calibration)
    raise ValueError(f"kind must be one of {tuple(TFLITE_FILES)}, got {kind!r}")


def int8_with_fallback(saved_model: Path, conv, calibration: np.ndarray) -> bytes:
    """Full-integer int8, but where int8 computes the logits wrongly, float for what makes
    them wrong: the int8 model and the float one run side by side on ``TRACE_CLIPS``
    calibration clips (``trace``); while the logits are off by more than
    ``TOLERATED_ERROR`` of their float spread, the tensors so far off and, behind each one
    already in float that still is, the quantised tensors it is computed from
    (``_fallback_step``), stay float (at most ``FALLBACK_ROUNDS`` times).

    Why: on a 12-epoch two-pathway model (object style, 128x128) plain int8 scored 0.12
    against Keras 0.57. The appearance pathway's tensors stayed within 0.05 of their
    spread; the motion pathway's were off by 0.09 after its stem and 2.0 at its pooling.
    Frame differences are mostly zero with rare large values: one int8 scale per tensor
    rounds the small ones (a gray level or two, what a small object's motion is made of)
    to nothing, so the difference must stay float although its own error looks small
    (0.02). Its stem alone in float gave 0.33; every tensor off by more than 0.1 in
    float, the difference not, 0.22; walking back to the input as here, 0.59 (agreeing
    with Keras on 98% of the videos), the logits then off by 0.03."""
    import tensorflow as tf

    plain = tf.lite.TFLiteConverter.from_saved_model(str(saved_model)).convert()
    conv.representative_dataset = lambda: ([clip[None]] for clip in calibration)
    # The debugger calibrates once; each denylist is then a requantisation, not a new pass.
    debugger = tf.lite.experimental.QuantizationDebugger(
        converter=conv, debug_dataset=lambda: ([clip[None]] for clip in calibration[:1]),
        debug_options=tf.lite.experimental.QuantizationDebugOptions())
    clips = calibration[np.unique(np.linspace(0, len(calibration) - 1, TRACE_CLIPS)
                                  .round().astype(int))]
    floats: set[str] = set()
    reference = float_outputs(plain, clips)  # the float model's, computed once
    blob = debugger.get_nondebug_quantized_model()
    for _ in range(FALLBACK_ROUNDS):
        seen = trace(reference, blob, clips)
        more = _fallback_step(seen, floats)
        if seen.logits_error <= TOLERATED_ERROR or not more:
            break
        floats |= more
        debugger.options = tf.lite.experimental.QuantizationDebugOptions(
            denylisted_nodes=sorted(floats))
        blob = debugger.get_nondebug_quantized_model()
    else:
        seen = trace(reference, blob, clips)
    log.log(logging.INFO if seen.logits_error <= TOLERATED_ERROR else logging.WARNING,
            "int8: logits within %.3f of float's spread on %d calibration clips, %d tensors "
            "kept in float", seen.logits_error, len(clips), len(floats))
    return blob


@dataclass(frozen=True)
class Trace:
    """A quantised model against its float twin, on the same clips (``trace``)."""

    errors: dict[str, float]  # op output -> RMS of (dequantised - float) / std of float
    feeds: dict[str, set[str]]  # op output -> the op outputs it is computed from
    outputs: tuple[str, ...]  # the model's outputs (the logits)

    @property
    def logits_error(self) -> float:
        return max(self.errors.get(name, 0.0) for name in self.outputs)


def _fallback_step(seen: Trace, floats: set[str]) -> set[str]:
    """The tensors to keep in float next: those off by more than ``TOLERATED_ERROR`` and
    not yet in float, and, for each one in float and still off (its error comes from its
    inputs), the quantised tensors its float computation starts from."""
    off = {name for name, err in seen.errors.items() if err > TOLERATED_ERROR}
    frontier: set[str] = set()
    walked: set[str] = set()
    stack = list(off & floats)
    while stack:
        for src in seen.feeds.get(stack.pop(), ()):
            if src not in walked:
                walked.add(src)
                (stack.append if src in floats else frontier.add)(src)
    return ((off | frontier) & seen.errors.keys()) - floats


def float_outputs(float_model: bytes, clips: np.ndarray) -> dict[str, np.ndarray]:
    """Every op output of ``float_model`` on ``clips``, by name: what ``trace`` compares to."""
    return _op_outputs(float_model, clips)[0]


def trace(ref: dict[str, np.ndarray], quantized: bytes, clips: np.ndarray) -> Trace:
    """Each op output of ``quantized`` with a float twin of the same name and shape in
    ``ref`` (``float_outputs`` on the same clips): the root-mean-square difference of its
    (dequantised) values from the float ones over ``clips``, divided by the float values'
    standard deviation."""
    got, feeds, outputs = _op_outputs(quantized, clips)
    errors = {}
    for name, q in got.items():
        f = ref.get(name)
        if f is not None and f.shape == q.shape and f.std() > 0:
            errors[name] = float(np.sqrt(np.mean((f - q) ** 2)) / f.std())
    return Trace(errors, feeds, outputs)


def _op_outputs(model: bytes, clips: np.ndarray):
    """Every op output tensor of ``model`` for each of ``clips``, as float32 (int8 ones
    dequantised), stacked over the clips, by tensor name; what each is computed from; the
    model's output names."""
    import tensorflow as tf

    # Without the default delegate: XNNPACK would take the float ops into one node whose
    # inner tensors are neither listed as op outputs nor kept.
    it = tf.lite.Interpreter(
        model_content=model, experimental_preserve_all_tensors=True,
        experimental_op_resolver_type=tf.lite.experimental.OpResolverType
        .BUILTIN_WITHOUT_DEFAULT_DELEGATES)
    it.allocate_tensors()
    # The private op list, as TensorFlow's own QuantizationDebugger reads it: the tensor
    # details alone do not tell an op's output from a constant, nor what feeds what.
    ops = it._get_ops_details()
    details = {d["index"]: d for d in it.get_tensor_details()}
    made_by = {t: op for op in ops for t in op["outputs"]}
    values: dict[str, list[np.ndarray]] = {details[t]["name"]: [] for t in made_by}
    for clip in clips:
        it.set_tensor(it.get_input_details()[0]["index"], clip[None])
        it.invoke()
        for t in made_by:
            v = it.get_tensor(t).astype(np.float32)
            scale, zero = details[t]["quantization"]
            values[details[t]["name"]].append((v - zero) * scale if scale else v)
    feeds = {details[t]["name"]: {details[s]["name"] for s in _sources(t, made_by)}
             for t in made_by}
    outputs = tuple(d["name"] for d in it.get_output_details())
    return {name: np.stack(v) for name, v in values.items()}, feeds, outputs


def _sources(tensor: int, made_by: dict[int, dict]) -> set[int]:
    """The op outputs ``tensor``'s op reads, looking through QUANTIZE and DEQUANTIZE."""
    found = set()
    for t in made_by[tensor]["inputs"]:
        if t not in made_by:
            continue  # a constant, or the model's input
        if made_by[t]["op_name"] in ("QUANTIZE", "DEQUANTIZE"):
            found |= _sources(t, made_by)
        else:
            found.add(t)
    return found
