"""The snapshot file: a round trip of nested state with arrays, atomic replacement, clear errors, no pickle."""

import math
import os
import pickle
import zipfile

import numpy as np
import pytest

from rules import snapshot_file
from rules.snapshot_file import SnapshotError


def state():
    return {
        "series": {"keys": [["d1", "presence"], ["d2", "count"]], "values": np.array([1.0, math.nan]),
                   "times": np.array([1.7e9, -math.inf]), "names": np.array(["a", "bc"])},
        "slots": [{"rule": "r", "fingerprint": "ab12", "group": "WK1", "pending_since": 1.7e9,
                   "active": np.array([True, False]), "count": np.int64(3)}],
        "empty": np.empty((0, 12), dtype=np.float32),
        "when": 1.5, "none": None,
    }


def test_round_trip_keeps_arrays_scalars_and_nan(tmp_path):
    path = tmp_path / "s.npz"
    size = snapshot_file.save(path, state(), {"partition": [0, 1]})
    assert size == path.stat().st_size > 0
    got, meta = snapshot_file.load(path)
    assert meta == {"partition": [0, 1]}
    want = state()
    np.testing.assert_array_equal(got["series"]["values"], want["series"]["values"])
    np.testing.assert_array_equal(got["series"]["times"], want["series"]["times"])
    assert got["series"]["names"].tolist() == ["a", "bc"]
    assert got["series"]["keys"] == [["d1", "presence"], ["d2", "count"]]
    assert got["slots"][0]["active"].dtype == np.bool_ and got["slots"][0]["count"] == 3
    assert got["empty"].shape == (0, 12) and got["empty"].dtype == np.float32
    assert got["when"] == 1.5 and got["none"] is None


def test_a_save_replaces_the_file_and_leaves_no_temporary(tmp_path):
    path = tmp_path / "state" / "s.npz"
    snapshot_file.save(path, {"n": 1})
    snapshot_file.save(path, {"n": 2})
    assert snapshot_file.load(path)[0] == {"n": 2}
    assert sorted(os.listdir(path.parent)) == ["s.npz"]


def test_a_failed_save_keeps_the_previous_snapshot(tmp_path):
    path = tmp_path / "s.npz"
    snapshot_file.save(path, {"n": 1})
    with pytest.raises(TypeError, match="object array"):
        snapshot_file.save(path, {"bad": np.array([object()], dtype=object)})
    assert snapshot_file.load(path)[0] == {"n": 1}
    assert os.listdir(tmp_path) == ["s.npz"]


@pytest.mark.parametrize("damage", ["truncate", "garbage", "empty", "npy", "no_meta", "bad_meta"])
def test_a_corrupt_file_raises_snapshot_error(tmp_path, damage):
    path = tmp_path / "s.npz"
    snapshot_file.save(path, state())
    raw = path.read_bytes()
    if damage == "truncate":
        path.write_bytes(raw[: len(raw) // 2])
    elif damage == "garbage":
        path.write_bytes(b"\x00not a zip" * 50)
    elif damage == "empty":
        path.write_bytes(b"")
    elif damage == "npy":
        np.save(path, np.arange(3))
        path.with_suffix(".npz.npy").rename(path)
    elif damage == "no_meta":
        with path.open("wb") as fh:
            np.savez(fh, x=np.arange(3))
    else:
        with zipfile.ZipFile(path, "w") as z:
            z.writestr("__snapshot__.npy", b"junk")
    with pytest.raises(SnapshotError, match=str(path)):
        snapshot_file.load(path)


def test_a_missing_file_is_file_not_found(tmp_path):
    with pytest.raises(FileNotFoundError):
        snapshot_file.load(tmp_path / "absent.npz")


def test_a_pickled_member_is_refused_not_run(tmp_path):
    """allow_pickle=False: a tampered snapshot holding an object array must not be unpickled."""
    path = tmp_path / "s.npz"
    with zipfile.ZipFile(path, "w") as z:
        z.writestr("__snapshot__.npy", b"")
        z.writestr("a0.npy", pickle.dumps(["x"]))
    with pytest.raises(SnapshotError):
        snapshot_file.load(path)
