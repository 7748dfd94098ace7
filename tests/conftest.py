"""Fixtures shared by the test files."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest


@pytest.fixture
def write_model(tmp_path):
    """``write_model(SOURCE, "net.py") -> Path``: a model file in this test's tmp_path (SOURCE dedented), for
    a spec such as ``f"{path}:net"``. Each test gets its own folder, so the same file name never collides."""
    def write(source: str, name: str = "model.py") -> Path:
        path = tmp_path / name
        path.write_text(textwrap.dedent(source))
        return path

    return write
