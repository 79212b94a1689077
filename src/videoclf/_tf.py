"""Import TensorFlow and Keras once, without the wall of start-up messages.

TensorFlow's C++ runtime prints absl and CUDA-probe lines straight to file descriptor 2
before any Python logging setting can stop it, so stderr is pointed at /dev/null while the
runtime loads, then restored. On a GPU host those lines are what tells a missing driver or
CUDA library apart: ``VIDEOCLF_TF_QUIET=0`` keeps them (and TensorFlow's own log level).
"""

from __future__ import annotations

import os
import sys

QUIET = os.environ.get("VIDEOCLF_TF_QUIET", "1") != "0"
if QUIET:
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
os.environ.setdefault("KERAS_BACKEND", "tensorflow")


def _loud_import():
    import keras
    import tensorflow as tf

    return tf, keras


def _quiet_import():
    sys.stderr.flush()
    saved = os.dup(2)
    devnull = os.open(os.devnull, os.O_WRONLY)
    try:
        os.dup2(devnull, 2)
        import tensorflow as tf

        tf.config.list_physical_devices()  # loads the device plugins, which print too
        import keras
    finally:
        os.dup2(saved, 2)
        os.close(saved)
        os.close(devnull)
    tf.get_logger().setLevel("ERROR")
    return tf, keras


tf, keras = _quiet_import() if QUIET else _loud_import()
