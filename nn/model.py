"""``mx.model``: checkpoints now; the FeedForward trainer joins in the training work."""

from __future__ import annotations

from framestream.nn.checkpoint import load_checkpoint, load_params, save_checkpoint

__all__ = ["load_checkpoint", "load_params", "save_checkpoint"]
