"""The training wing: the network, its tf.data input and the train stage.

``network`` (the (2+1)D ResNet; ``import videoclf.training.network`` registers its Keras
layers), ``inputs`` (tf.data over the shards), ``precise_bn``, ``callbacks``, ``runtime``,
``keras_compat`` (every workaround of the pinned Keras, in one place), ``modelio`` (the model
folder on disk) and ``train`` (the train stage). ``options`` declares the choices the network
offers without loading TensorFlow, for the params schema.
"""
