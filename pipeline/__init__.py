"""pipeline: streams of training batches from in-memory arrays and from SFrames.

Plain Python iterators with NumPy inside: a stream's ``batches(epoch)`` yields frozen
``Batch`` objects (data, label, pad, index). ``framestream.nn.io`` wraps them in MXNet's
DataIter surface. This layer imports frames only.

>>> import numpy as np
>>> from framestream.pipeline import ArrayStream
>>> s = ArrayStream(np.arange(6.0).reshape(3, 2), batch_size=2, last_batch_handle='discard')
>>> [b.data[0].tolist() for b in s.batches(0)]
[[[0.0, 1.0], [2.0, 3.0]]]
"""

from framestream.pipeline.arrays import ArrayStream, named_arrays
from framestream.pipeline.batch import LAST_BATCH_HANDLES, Batch, Batcher, Block, Field
from framestream.pipeline.images import ImageOptions
from framestream.pipeline.prefetch import Prefetcher, ordered_map
from framestream.pipeline.sframe_stream import SFrameStream
from framestream.pipeline.source import plan_units

__all__ = [
    "LAST_BATCH_HANDLES", "ArrayStream", "Batch", "Batcher", "Block", "Field", "ImageOptions",
    "Prefetcher", "SFrameStream", "named_arrays", "ordered_map", "plan_units",
]
