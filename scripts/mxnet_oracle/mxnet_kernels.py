"""Import before ``mxnet``: choose MXNet's plain CPU kernels unless ``--mkldnn`` is on the command line.

The oracle data is made with the plain kernels (oneDNN fuses and reorders arithmetic, so its
numbers drift by about 1e-4); ``MKLDNN`` says which were used, for the manifests.
"""

from __future__ import annotations

import os
import sys

MKLDNN = "--mkldnn" in sys.argv
if not MKLDNN:
    os.environ.setdefault("MXNET_MKLDNN_ENABLED", "0")
    os.environ.setdefault("MXNET_SUBGRAPH_BACKEND", "NONE")
os.environ.setdefault("MXNET_STORAGE_FALLBACK_LOG_VERBOSE", "0")
