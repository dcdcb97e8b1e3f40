"""Shared by the pandas-oracle tests: values compared as plain Python."""

from __future__ import annotations

import array
import math

import numpy as np
import pandas as pd


def py(value):
    """A value as plain Python, every spelling of 'missing' as None (vectors as lists)."""
    if value is None or value is pd.NA:
        return None
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float) and math.isnan(value):
        return None
    if isinstance(value, array.array | np.ndarray):
        return [py(v) for v in value]
    return value
