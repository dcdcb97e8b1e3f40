"""The examples in the pipeline's docstrings run as written."""

from __future__ import annotations

import doctest
import importlib

import pytest

MODULES = ["", ".batch", ".arrays", ".prefetch", ".source", ".sframe_stream", "._random", ".images"]


@pytest.mark.parametrize("name", MODULES)
def test_docstring_examples(name):
    result = doctest.testmod(importlib.import_module(f"framestream.pipeline{name}"))
    assert result.attempted > 0 and result.failed == 0
