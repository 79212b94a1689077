"""videoclf: a reproducible (2+1)D ResNet video-classification pipeline on DVC.

Importing the package registers the model's custom Keras layers, so
``keras.models.load_model("data/model/model.keras")`` works after ``import videoclf``.
"""

from __future__ import annotations

from . import model  # noqa: F401  (registers the custom layers with Keras)

__version__ = "0.1.0"
