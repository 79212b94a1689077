"""Precise BatchNorm statistics: recompute every BatchNormalization layer's moving mean and
variance with the current weights, over a fixed set of training batches, before each
validation (as PySlowFast's ``BN.USE_PRECISE_STATS``; Wu & Johnson, "Rethinking 'Batch' in
BatchNorm", 2021).

Why: Keras keeps an exponential moving average (momentum 0.99) of the batch statistics seen
while the weights change. When a feature's variance is tiny compared with how fast its mean
moves — frame differences of a small object in a still scene are zero almost everywhere —
the lagging average is many standard deviations off, and the network evaluates at chance
while it trains well (measured: validation 0.10 against 0.74 on the built-in ``object``
style after 12 epochs; docs/RECIPES.md). The recomputed statistics are those of the final
weights, so evaluation sees the normalisation training used.
"""

from __future__ import annotations

from typing import Any

from .._tf import keras, tf
from .keras_compat import swapped_momentum


def batchnorm_layers(model: keras.Model) -> list:
    """Every BatchNormalization layer of ``model``, nested ones included."""
    return [layer for layer in model._flatten_layers(include_self=False)
            if isinstance(layer, keras.layers.BatchNormalization)]


class PreciseBatchNorm(keras.callbacks.Callback):
    """Before each validation inside ``fit``, set the BatchNorm statistics to the plain
    average of the batch statistics over ``batches`` (a fixed, finite dataset of ``(x, y)``),
    computed with the weights of that moment. Deterministic: same batches, same weights, same
    statistics, so resumed runs match unbroken ones (the statistics are saved with the
    weights in every checkpoint). Nothing happens for a model without BatchNorm.
    """

    def __init__(self, batches: tf.data.Dataset):
        super().__init__()
        self.batches = batches
        self._in_fit = False
        self._step: Any = None  # a tf.function, traced for one model

    def set_model(self, model):
        super().set_model(model)
        self._step = None  # traced for one model

    def on_train_begin(self, logs=None):
        self._in_fit = True

    def on_train_end(self, logs=None):
        self._in_fit = False

    def on_test_begin(self, logs=None):
        if self._in_fit:
            self.recompute()

    def recompute(self) -> None:
        bns = batchnorm_layers(self.model)
        if not bns:
            return
        # BatchNormalization.call updates ``moving = moving * momentum + batch * (1 - momentum)``;
        # with momentum k / (k + 1) at the k-th batch that is the running mean of the batch
        # statistics. The momentum is a variable while this runs
        # (``keras_compat.swapped_momentum``), so one traced function serves every batch.
        if self._step is None:
            self._momentum = tf.Variable(0.0, trainable=False, dtype="float32")
            model, strategy = self.model, self.model.distribute_strategy
            # In each replica, as fit runs its steps (BatchNorm is per replica in Keras).
            self._step = tf.function(
                lambda x: strategy.run(lambda x: model(x, training=True), args=(x,)),
                reduce_retracing=True)
            self._data = (strategy.experimental_distribute_dataset(self.batches)
                          if strategy.num_replicas_in_sync > 1 else self.batches)
        with swapped_momentum(bns, self._momentum):
            for k, (x, _) in enumerate(self._data):
                self._momentum.assign(k / (k + 1))
                self._step(x)
