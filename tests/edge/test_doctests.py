"""The examples in the edge modules' docstrings run."""

from __future__ import annotations

import doctest
import importlib

import pytest


@pytest.mark.parametrize("module", ["edge.cayenne_lpp", "edge.lora_frame", "edge.rg15", "edge.rn2483",
                                    "edge.rak3172", "edge.network_server", "core.toml_text"])
def test_docstring_examples(module: str) -> None:
    result = doctest.testmod(importlib.import_module(module))
    assert result.attempted > 0
    assert result.failed == 0
