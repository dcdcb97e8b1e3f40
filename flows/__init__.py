"""flows: Prefect 3 flows for preprocessing, training and batch scoring (issue 7).

Import cost matters (Prefect takes about a second to import), so nothing here is
imported by ``import framestream``; use ``framestream.flows.<module>`` directly.

- ``preprocess``: a source -> transforms -> a saved SFrame (``flows.preprocess``).
- ``train``: a network trained from a saved SFrame, one task per epoch, resumable
  (``flows.train``).
- ``score`` / ``extract_features``: a model over a saved SFrame on a Dask cluster
  (``flows.score``).
- ``etl_train``: all of them with a report (``flows.etl``).

``FLOWS`` maps those names to the flow functions (imported on first use) and
``run(config)`` runs the flow a config file names (see ``flows.config.load_config``).
Importing this package sets Prefect's environment defaults (``runtime.prefect_defaults``)
before anything imports Prefect, since Prefect reads its settings once, at import.
"""

from __future__ import annotations

import os
from typing import Any

from framestream.flows.runtime import prefect_defaults

prefect_defaults()

_FLOW_MODULES = {
    "preprocess": "framestream.flows.preprocess",
    "train": "framestream.flows.train",
    "score": "framestream.flows.score",
    "extract_features": "framestream.flows.score",
    "etl_train": "framestream.flows.etl",
}


def __getattr__(name: str) -> Any:
    if name == "FLOWS":
        import importlib

        return {flow: getattr(importlib.import_module(module), flow)
                for flow, module in _FLOW_MODULES.items()}
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def run(config_source: str | os.PathLike | dict) -> Any:
    """Load ``config_source`` (a YAML file, YAML text or a mapping with a ``flow:`` key) and
    run that flow quietly on the configured (or embedded) Prefect server; returns what the
    flow returns (a saved path, or the report dict for ``etl_train``)."""
    from framestream.flows.config import load_config
    from framestream.flows.runtime import quiet_flow_settings

    prefect_defaults()
    name, config = load_config(config_source)
    flow = __getattr__("FLOWS")[name]
    with quiet_flow_settings():
        return flow(config)


__all__ = ["FLOWS", "prefect_defaults", "run"]  # noqa: F822 (FLOWS comes from __getattr__)
