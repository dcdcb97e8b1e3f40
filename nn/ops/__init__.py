"""The operator table. Importing this package registers every operator module."""

from framestream.nn.ops import (  # noqa: F401  (imported to register)
    activation,
    conv,
    dense,
    detection,
    elemwise,
    loss,
    norm,
    pooling,
    shape,
)
from framestream.nn.ops._base import REQUIRED, Operator, P, Runtime, lookup, register, registered

__all__ = ["REQUIRED", "Operator", "P", "Runtime", "lookup", "register", "registered"]
