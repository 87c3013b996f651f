"""The inline operator says at start-up which fence untrusted scene code gets (issue: fail closed)."""

from __future__ import annotations

import logging

import pytest

from videojob.controller.main import _say_isolation
from videojob.pipeline.sandbox import Sandbox


@pytest.mark.parametrize(
    "mode, level, says",
    [
        ("bubblewrap", logging.INFO, "bubblewrap sandboxes"),
        ("none", logging.WARNING, "WITHOUT an OS sandbox"),
        ("gvisor-please", logging.ERROR, "VIDEOJOB_SANDBOX='gvisor-please' is not one of"),
    ],
)
def test_the_inline_operator_names_its_isolation_at_start_up(tmp_path, monkeypatch, caplog, mode, level, says):
    monkeypatch.setenv("VIDEOJOB_SANDBOX", mode)
    with caplog.at_level(logging.INFO, logger="videojob.controller.main"):
        _say_isolation(Sandbox(tmp_path))
    (record,) = [r for r in caplog.records if r.name == "videojob.controller.main"]
    assert record.levelno == level and says in record.getMessage()
