"""The inference wing: every model format as one predictor (``predictors``), scoring whole
videos (``scoring``, shared by evaluate, predict and the service), the evaluate and export
stages (``evaluate``, ``export``), predict's timeline (``timeline/``) and the HTTP service
(``service``). Keras models are read through ``training.modelio``, the one crossing into
another wing.
"""
