"""ConfigWatcher on real files: edits, atomic replaces, bad edits kept out, SIGHUP-style reloads, its thread."""

from __future__ import annotations

import json
import os
import threading
import time
from pathlib import Path

import pytest

from edge.config_watch import ConfigWatcher
from tests.firmware_sim.support import wait_for


def _load(path: Path) -> dict[str, int]:
    data = json.loads(path.read_text())
    if not isinstance(data, dict):
        raise ValueError(f"{path}: not an object")
    return data


class Changes:
    def __init__(self) -> None:
        self.calls: list[tuple[dict[str, int], dict[str, int]]] = []

    def __call__(self, old: dict[str, int], new: dict[str, int]) -> None:
        self.calls.append((old, new))


def _age(path: Path, seconds: float = 10.0) -> None:
    """Move the file's mtime into the past, as a file edited minutes ago has (no racy re-reads)."""
    past = time.time() - seconds
    os.utime(path, (past, past))


def _error(w: ConfigWatcher[dict[str, int]]) -> str | None:
    return w.last_error  # read afresh: mypy would keep an earlier narrowing of the attribute


@pytest.fixture
def conf(tmp_path: Path) -> Path:
    path = tmp_path / "conf.json"
    path.write_text('{"a": 1}')
    _age(path, 60)
    return path


def test_an_edit_in_place_calls_on_change_with_old_and_new(conf: Path) -> None:
    changes = Changes()
    w = ConfigWatcher(conf, _load, changes)
    assert w.current == {"a": 1}
    assert not w.check() and changes.calls == []  # nothing changed yet
    conf.write_text('{"a": 2}')
    assert w.check()
    assert changes.calls == [({"a": 1}, {"a": 2})]
    assert w.current == {"a": 2} and w.changes == 1 and w.failures == 0


def test_an_atomic_replace_with_the_same_size_and_mtime_is_seen(conf: Path) -> None:
    changes = Changes()
    w = ConfigWatcher(conf, _load, changes)
    st = conf.stat()
    tmp = conf.with_suffix(".new")
    tmp.write_text('{"a": 7}')  # same length as the old content
    os.utime(tmp, ns=(st.st_atime_ns, st.st_mtime_ns))  # and the same mtime: only the inode differs
    os.replace(tmp, conf)
    assert conf.stat().st_size == st.st_size and conf.stat().st_mtime_ns == st.st_mtime_ns
    assert w.check()
    assert changes.calls == [({"a": 1}, {"a": 7})]


def test_a_rewrite_within_one_timestamp_tick_is_caught_by_the_content(conf: Path) -> None:
    changes = Changes()
    conf.write_text('{"a": 3}')  # modified just now: the watcher cannot trust mtime to move again
    w = ConfigWatcher(conf, _load, changes)
    st = conf.stat()
    with conf.open("r+") as f:  # same inode, same size, and put the old mtime back
        f.write('{"a": 4}')
    os.utime(conf, ns=(st.st_atime_ns, st.st_mtime_ns))
    assert w.check()
    assert w.current == {"a": 4}


def test_touch_or_same_content_changes_nothing(conf: Path) -> None:
    changes = Changes()
    w = ConfigWatcher(conf, _load, changes)
    conf.write_text('{"a": 1}')
    os.utime(conf)
    assert not w.check()
    assert changes.calls == [] and w.changes == 0


def test_a_bad_edit_keeps_the_old_value_counts_and_is_not_retried_until_the_next_change(
        conf: Path, caplog: pytest.LogCaptureFixture) -> None:
    changes = Changes()
    loads: list[Path] = []

    def load(path: Path) -> dict[str, int]:
        loads.append(path)
        return _load(path)

    w = ConfigWatcher(conf, load, changes)
    conf.write_text('{"a": ')
    _age(conf)
    assert not w.check()
    assert w.current == {"a": 1} and w.failures == 1 and changes.calls == []
    assert w.last_error is not None and "Expecting value" in w.last_error
    assert "keeping the previous value" in caplog.text and "Expecting value" in caplog.text
    n = len(loads)
    assert not w.check() and len(loads) == n and w.failures == 1  # the same bad file is not tried again
    conf.write_text('{"a": 5}')
    assert w.check()
    assert w.current == {"a": 5} and _error(w) is None and w.failures == 1
    assert changes.calls == [({"a": 1}, {"a": 5})]


def test_a_removed_file_keeps_the_old_value_and_its_return_is_loaded(conf: Path) -> None:
    changes = Changes()
    w = ConfigWatcher(conf, _load, changes)
    conf.unlink()
    assert not w.check()
    assert w.failures == 1 and "cannot be read" in str(w.last_error) and w.current == {"a": 1}
    assert not w.check() and w.failures == 1  # counted once, not at every poll
    conf.write_text('{"a": 6}')
    assert w.check() and w.current == {"a": 6}


def test_a_failing_on_change_keeps_the_old_value(conf: Path) -> None:
    def refuse(_old: dict[str, int], _new: dict[str, int]) -> None:
        raise RuntimeError("port busy")

    w = ConfigWatcher(conf, _load, refuse)
    conf.write_text('{"a": 9}')
    assert not w.check()
    assert w.current == {"a": 1} and w.failures == 1 and "port busy" in str(w.last_error)


def test_reload_loads_even_an_unchanged_file(conf: Path) -> None:
    changes = Changes()
    w = ConfigWatcher(conf, _load, changes)
    assert w.reload()
    assert changes.calls == [({"a": 1}, {"a": 1})]


def test_a_bad_file_at_start_raises() -> None:
    with pytest.raises(OSError):
        ConfigWatcher(Path("/nonexistent/conf.json"), _load, Changes())


def test_the_thread_follows_edits_and_requests_and_stop_ends_it(conf: Path) -> None:
    changes = Changes()
    w = ConfigWatcher(conf, _load, changes, interval=0.05, name="t")
    w.start()
    try:
        conf.write_text('{"a": 2}')
        assert wait_for(lambda: w.current == {"a": 2}, timeout=5.0)
        w.request_reload()  # what a SIGHUP handler does
        assert wait_for(lambda: len(changes.calls) == 2, timeout=5.0)
        assert changes.calls[1] == ({"a": 2}, {"a": 2})
        assert any(t.name == "config-watch-t" for t in threading.enumerate())
    finally:
        w.stop()
    assert not any(t.name == "config-watch-t" for t in threading.enumerate())


def test_a_long_interval_does_not_delay_stop(conf: Path) -> None:
    w = ConfigWatcher(conf, _load, Changes(), interval=3600)
    w.start()
    started = time.monotonic()
    w.stop()
    assert time.monotonic() - started < 2.0

