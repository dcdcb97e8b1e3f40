"""The pretrained-model store, image classifiers and detectors behind ``mx.pretrained_model``."""
