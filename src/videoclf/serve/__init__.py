"""The serving wing: scoring whole videos (``inference``, shared by evaluate and predict), the
evaluate stage and the export stage. It reads models through ``training.modelio`` only.
"""
