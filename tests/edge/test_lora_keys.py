"""LoRa key files: per-device keys, a derivation master, 0600, precise errors; the agent needs one."""

import json
import subprocess
import sys

import pytest

from edge.lora_keys import KeyFileError, KeyRing


def test_per_device_keys_win_over_the_master_and_derived_keys_differ(tmp_path):
    ring = KeyRing(master=bytes(32), devices={"0a0b0c01": bytes(range(16))})
    assert ring.key_for("0A0B0C01") == bytes(range(16))
    derived = {ring.key_for(a) for a in ("0A0B0C02", "0A0B0C03")}
    assert len(derived) == 2 and all(k is not None and len(k) == 16 for k in derived)
    path = tmp_path / "keys.json"
    ring.save(path)
    assert path.stat().st_mode & 0o777 == 0o600
    again = KeyRing.load(path)
    assert [again.key_for(a) for a in ("0A0B0C01", "0A0B0C02")] == [ring.key_for(a) for a in ("0A0B0C01", "0A0B0C02")]
    assert KeyRing().key_for("0A0B0C01") is None


@pytest.mark.parametrize(("content", "message"), [
    ("not json", "not JSON"),
    ("{}", "needs 'master' and/or 'devices'"),
    ('{"master": "abcd"}', "'master' must be 64 hex digits"),
    ('{"devices": {"0A0B0C01": "xyz"}}', "key of 0A0B0C01 must be 32 hex digits"),
    ('{"devices": []}', "'devices' must map"),
])
def test_bad_key_files_are_refused_with_the_reason(tmp_path, content, message):
    path = tmp_path / "keys.json"
    path.write_text(content)
    path.chmod(0o600)
    with pytest.raises(KeyFileError, match=message):
        KeyRing.load(path)


def test_a_key_file_readable_by_others_is_refused(tmp_path):
    path = tmp_path / "keys.json"
    path.write_text(json.dumps({"master": "00" * 32}))
    path.chmod(0o644)
    with pytest.raises(KeyFileError, match="chmod 600"):
        KeyRing.load(path)


def test_the_agent_will_not_start_without_keys_for_its_lora_devices(tmp_path):
    result = subprocess.run([sys.executable, "-m", "smartcity", "edge", "--gateway", "gw-vs-01",
                             "--state-dir", str(tmp_path)], capture_output=True, text=True, timeout=60,
                            check=False, env={"PATH": "/usr/bin:/bin", "HOME": str(tmp_path)})
    assert result.returncode == 2
    assert "--lora-keys" in result.stderr
