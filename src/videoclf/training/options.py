"""What the ``model`` and ``train`` params may choose between, declared once and without
TensorFlow: the schema in ``videoclf.params`` validates against these before a stage loads
TensorFlow, and the network and the train stage import the same names."""

from __future__ import annotations

INPUTS: tuple[str, ...] = ("rgb", "diff", "rgb_diff", "two_pathway")  # network.build_model
MOTION_SCALED: tuple[str, ...] = ("diff", "two_pathway")  # inputs model.motion_scale applies to
FUSIONS: tuple[str, ...] = ("features", "scores")  # network.build_model, two_pathway
MOTION_DOWNSCALES: tuple[str, ...] = ("mean", "stem")  # network._motion, motion_scale > 1
NORMS: tuple[str, ...] = ("layer", "batch")             # network residual blocks
LR_SCHEDULES: tuple[str, ...] = ("constant", "cosine")  # train
DISTRIBUTE: tuple[str, ...] = ("auto", "none", "mirrored", "multi_worker")  # runtime
BALANCE: tuple[str, ...] = ("none", "sample", "sqrt", "weight")  # inputs.class_balance
PRETEXT_TASKS: tuple[str, ...] = ("pace", "arrow")     # pretrain: the self-supervised task
