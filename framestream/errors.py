"""The exceptions framestream raises, in one place.

Every message names the thing at fault (the column and row, the file and line or byte
offset, the layer and shapes) and what was expected, so a user can fix the input
without reading our code. Each class also derives from the built-in exception a
Python user would catch for that kind of mistake.
"""

from __future__ import annotations


class FramestreamError(Exception):
    """Base class of every error raised on purpose by framestream."""


class ColumnNotFoundError(FramestreamError, KeyError):
    """A column name that the frame does not have."""

    def __str__(self) -> str:  # KeyError would repr() the message
        return str(self.args[0]) if self.args else ""


class SchemaError(FramestreamError, TypeError):
    """A value or column whose type does not fit what the operation needs."""


class LengthMismatchError(FramestreamError, ValueError):
    """Two columns, or a column and a frame, with different numbers of rows."""


class ConversionError(FramestreamError, ValueError):
    """A value that cannot be converted to the requested type (names row and value)."""


class CSVError(FramestreamError, ValueError):
    """A CSV file that cannot be read as asked (names file, line, column and value)."""


class StoreError(FramestreamError, OSError):
    """A saved frame that cannot be opened or written."""


class NotAnSFrameError(StoreError):
    """A path that exists but does not hold a saved SFrame."""


class CorruptStoreError(StoreError):
    """A saved SFrame whose files are damaged or missing (names the file)."""


class FrameExistsError(StoreError, FileExistsError):
    """Saving over an existing frame without ``overwrite=True``."""


class NNError(FramestreamError):
    """Base of the errors raised by the Symbol API and the executor (MXNet's ``MXNetError``)."""


class OperatorParamError(NNError, ValueError):
    """An operator parameter that is missing, unknown or malformed (names op, node and value)."""


class UnknownOperatorError(NNError, KeyError):
    """An operator name that is not registered (names the operator and the node)."""

    def __str__(self) -> str:
        return str(self.args[0]) if self.args else ""


class ShapeInferenceError(NNError, ValueError):
    """Shapes that contradict each other (names the layer, its input shapes and the rule)."""


class MissingArgumentError(NNError, ValueError):
    """An argument of a symbol with no value or shape supplied (names the argument)."""


class SymbolFileError(NNError, ValueError):
    """A symbol JSON file or string that cannot be read (names the file and the node)."""


class LayerNotFoundError(NNError, ValueError):
    """A layer (output) name that the network does not have (lists the candidates)."""


class ConfigError(FramestreamError, ValueError):
    """A flow configuration with an unknown key, a wrong type or a bad value (names the key)."""


class ClusterError(FramestreamError, ConnectionError):
    """A Dask scheduler that cannot be reached or started, or a run on the cluster that lost
    a worker or heard nothing from one in time (names the address and the rank)."""


class ModelStoreError(FramestreamError):
    """Base of the store's errors: a model that cannot be fetched, installed or read."""

    def __str__(self) -> str:  # KeyError would repr() it; OSError formats two arguments
        return str(self.args[0]) if self.args else ""


class DownloadError(ModelStoreError, OSError):
    """A URL or path that cannot be read to the end (names it and says why)."""


class ChecksumError(ModelStoreError, ValueError):
    """A downloaded archive whose SHA-256 differs from the one asked for."""


class ArchiveError(ModelStoreError, ValueError):
    """An archive that is truncated, corrupt, or holds a member we refuse to extract."""


class InvalidModelError(ModelStoreError, ValueError):
    """A model folder with a file missing or malformed (names the folder and the file)."""


class ModelExistsError(ModelStoreError, FileExistsError):
    """Installing a model whose name is taken, without ``overwrite=True``."""


class ModelNotFoundError(ModelStoreError, KeyError):
    """A model name that is not installed (the message lists those that are)."""
