"""videoclf: a reproducible (2+1)D ResNet video-classification pipeline on DVC.

Importing the package is light (no TensorFlow): the stages that only decode video never pay
for it. ``import videoclf.training.network`` registers the model's custom Keras layers, so
that ``keras.models.load_model("data/model/model.keras", safe_mode=True)`` works after it.
The package version is pyproject.toml's (``importlib.metadata.version("videoclf")``).
"""

from __future__ import annotations

import cv2

# One OpenCV thread per process: parallelism comes from process pools, and an OpenCV thread
# pool alive in a parent deadlocks the children it forks.
cv2.setNumThreads(1)
