"""What every pretrained model exposes about itself, shared by the classifier and the detector."""

from __future__ import annotations

from typing import Any


class DescribedModel:
    """Read-only views of a loaded model: its name, version, labels, metadata, graph and weights.

    Subclasses set ``_symbol``, ``_arg_params``, ``_aux_params``, ``_labels`` and ``_metadata``.
    """

    _symbol: Any
    _arg_params: dict[str, Any]
    _aux_params: dict[str, Any]
    _labels: list[Any]
    _metadata: dict[str, Any]

    @property
    def name(self) -> str:
        return self._metadata.get("name", "")

    @property
    def version(self) -> Any:
        return self._metadata.get("version")

    @property
    def labels(self) -> list[Any]:
        return list(self._labels)

    @property
    def metadata(self) -> dict[str, Any]:
        return dict(self._metadata)

    @property
    def symbol(self) -> Any:
        return self._symbol

    @property
    def arg_params(self) -> dict[str, Any]:
        return self._arg_params

    @property
    def aux_params(self) -> dict[str, Any]:
        return self._aux_params
