"""Every workaround of the pinned Keras in one place, each undone when its block ends.

- ``multi_worker_fit``: Keras 3's ``fit`` under MultiWorkerMirroredStrategy
  (keras-team/keras#20585, tensorflow/tensorflow#72388).
- ``swapped_momentum``: BatchNormalization's ``momentum`` replaced by a variable while
  precise statistics are recomputed (Keras offers no public way to do it).
- ``reproducible_keras_zip``: ``model.save`` stamps the save date, the zip entry times and
  shared objects' memory addresses; rewritten so that the same weights give the same bytes.

They were written against ``TESTED_KERAS``; ``check_version`` says so once when another Keras
is installed (the tests of ``tests/training`` then say whether each still holds). Drop a
workaround when Keras fixes what it works around.
"""

from __future__ import annotations

import json
import logging
import zipfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from .._tf import keras, tf

log = logging.getLogger(__name__)

TESTED_KERAS = "3.15.1"  # pyproject.toml's pin
_warned: list[str] = []


def check_version() -> bool:
    """True when the installed Keras is the one these workarounds were written against."""
    if keras.__version__ == TESTED_KERAS:
        return True
    if not _warned:
        _warned.append(keras.__version__)
        log.warning("keras_compat: written for Keras %s, Keras %s is installed; run the tests "
                    "to see whether the workarounds still hold", TESTED_KERAS, keras.__version__)
    return False


@contextmanager
def multi_worker_fit(model: keras.Model, dataset: tf.data.Dataset) -> Iterator[None]:
    """Let ``model.fit(dataset)`` run under MultiWorkerMirroredStrategy, which fails as
    released in two places:

    1. before the first step it averages a real (x, y) batch across workers only to learn its
       shapes, and the collective reduce of a tuple fails: build from the element spec instead;
    2. it averages each step's scalar logs with ``reduce("MEAN", v, axis=0)``, which a scalar
       has no axis for: scalars are averaged over replicas with ``axis=None``.

    Gradients are all-reduced by the strategy itself, untouched (the two-process test checks
    that both workers end with the same weights). Nothing is patched under another strategy.
    """
    strategy = model.distribute_strategy
    if not isinstance(strategy, tf.distribute.MultiWorkerMirroredStrategy):
        yield
        return
    check_version()
    from keras.src.backend.tensorflow import trainer as tf_trainer

    batch = tuple(tf.zeros([1, *s.shape[1:]], s.dtype) for s in dataset.element_spec)

    def build(iterator: Any = None, data_batch: Any = None) -> None:
        with strategy.scope():
            model._symbolic_build(data_batch=batch)

    original = tf_trainer.reduce_per_replica

    def reduce_per_replica(values: Any, strategy: Any, reduction: str) -> Any:
        if reduction == "auto" and isinstance(strategy, tf.distribute.MultiWorkerMirroredStrategy):
            return tf.nest.map_structure(
                lambda v: strategy.reduce("MEAN", v, axis=None)
                if isinstance(v, tf.distribute.DistributedValues) else v, values)
        return original(values, strategy, reduction)

    model._maybe_symbolic_build = build
    tf_trainer.reduce_per_replica = reduce_per_replica
    try:
        yield
    finally:
        tf_trainer.reduce_per_replica = original
        del model._maybe_symbolic_build  # the class's method again


@contextmanager
def swapped_momentum(layers: list, momentum: tf.Variable) -> Iterator[None]:
    """Give every BatchNormalization layer ``momentum`` (a variable, so one traced function
    serves every value), and its own float back afterwards. Set with ``object.__setattr__``:
    Keras would track a variable assigned as an attribute as one of the layer's weights, and
    the saved config must hold the float."""
    old = [layer.momentum for layer in layers]
    try:
        for layer in layers:
            object.__setattr__(layer, "momentum", momentum)
        yield
    finally:
        for layer, m in zip(layers, old):
            object.__setattr__(layer, "momentum", m)


def _renumber_shared_objects(config: Any) -> Any:
    """Keras names shared objects by their memory address (``id()``), which changes from
    process to process; number them in order of appearance instead (same identities)."""
    ids: dict[int, int] = {}

    def walk(o: Any) -> Any:
        if isinstance(o, dict):
            return {k: (ids.setdefault(v, len(ids) + 1) if k == "shared_object_id" else walk(v))
                    for k, v in o.items()}
        if isinstance(o, list):
            return [walk(v) for v in o]
        return o

    return walk(config)


def reproducible_keras_zip(raw: Path, path: Path, metadata: dict | None = None) -> None:
    """Copy the ``.keras`` archive ``raw`` to ``path`` with a fixed save date, fixed entry
    times and renumbered shared objects: the same weights give the same bytes, so DVC does
    not see a new model (and rerun evaluate) for identical weights. ``metadata`` is added to
    the archive's ``metadata.json`` (Keras ignores keys it does not know)."""
    with zipfile.ZipFile(raw) as src, zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as dst:
        for info in src.infolist():
            data = src.read(info)
            if info.filename == "metadata.json":
                meta = json.loads(data)
                meta["date_saved"] = "1970-01-01@00:00:00"
                meta.update(metadata or {})
                data = json.dumps(meta).encode()
            elif info.filename == "config.json":
                data = json.dumps(_renumber_shared_objects(json.loads(data))).encode()
            dst.writestr(zipfile.ZipInfo(info.filename, (1980, 1, 1, 0, 0, 0)), data,
                         compress_type=info.compress_type)
