"""Shared pytest fixtures."""

from __future__ import annotations

import pytest


@pytest.fixture(autouse=True)
def home(tmp_path, monkeypatch):
    """Point ``FRAMESTREAM_HOME`` (caches, model store) at a fresh folder for every test."""
    path = tmp_path / "framestream-home"
    monkeypatch.setenv("FRAMESTREAM_HOME", str(path))
    return path
