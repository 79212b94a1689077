"""videoclf: a reproducible (2+1)D ResNet video-classification pipeline on DVC.

Importing the package registers the model's custom Keras layers, so
``keras.models.load_model("data/model/model.keras")`` works after ``import videoclf``.
"""

from __future__ import annotations

import cv2

# One OpenCV thread per process: parallelism comes from process pools, and an OpenCV thread
# pool alive in a parent deadlocks the children it forks.
cv2.setNumThreads(1)

from . import model  # noqa: E402,F401  (registers the custom layers with Keras)

__version__ = "0.1.0"
