"""framestream: out-of-core SFrames feeding an MXNet-compatible executor, on Zarr, Dask and Prefect.

>>> import framestream as fs
>>> sf = fs.SFrame({'x': [1.0, 2.0, 3.0]})
>>> sf['x'].mean()
2.0
"""

from framestream import datasets, errors, image_analysis
from framestream.frames import Image, SArray, SFrame, aggregate, load_sframe

__all__ = ["Image", "SArray", "SFrame", "aggregate", "datasets", "errors", "image_analysis", "load_sframe"]
__version__ = "0.1.0"
