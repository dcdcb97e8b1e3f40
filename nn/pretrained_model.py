"""``mx.pretrained_model``: download, list, load and remove pretrained models (issue 6)."""
