"""The serving wing: every model format as one predictor (``predictors``), scoring whole
videos (``inference``, shared by evaluate, predict and the service), the evaluate and export
stages, the timeline and the HTTP service. Keras models are read through
``training.modelio``, the one crossing into another wing.
"""
