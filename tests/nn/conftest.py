"""Shared nn test set-up: where the oracle files live, and the devices to run on.

``ctx`` runs a test on the CPU and, marked ``gpu``, on CUDA device 0; the GPU case skips
cleanly where CuPy is missing or sees no device.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from framestream import mx

MXNET_FIXTURES = Path(__file__).parent / "fixtures" / "mxnet"


@pytest.fixture(params=["cpu", pytest.param("gpu", marks=pytest.mark.gpu)])
def ctx(request):
    if request.param == "gpu":
        if mx.num_gpus() == 0:
            pytest.skip("no CUDA device visible to CuPy")
        return mx.gpu(0)
    return mx.cpu()
