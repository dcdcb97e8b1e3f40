"""framestream: out-of-core SFrames feeding an MXNet-compatible executor, on Zarr, Dask and Prefect.

>>> import framestream as fs
>>> sf = fs.SFrame({'x': [1.0, 2.0, 3.0]})
>>> sf['x'].mean()
2.0
"""

from framestream import errors
from framestream.frames import SArray, SFrame, aggregate, load_sframe

__all__ = ["SArray", "SFrame", "aggregate", "errors", "load_sframe"]
__version__ = "0.1.0"
