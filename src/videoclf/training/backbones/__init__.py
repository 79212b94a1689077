"""The bodies a pathway can be built on, one room each (MMAction2's ``models/backbones``):
``r2plus1d``, the tutorial's (2+1)D ResNet. ``network`` assembles them into the classifier.
"""
