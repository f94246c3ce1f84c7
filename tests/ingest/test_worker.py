"""Worker names: stable, one live process each, and distinct by default."""

import subprocess
import sys

import pytest

from ingest.worker import WorkerNameError, claim


def test_default_names_are_distinct_per_process_and_stable(tmp_path):
    first, second = claim(tmp_path), claim(tmp_path)
    assert first.name != second.name and first.client_id != second.client_id
    name = first.name
    first.release()
    again = claim(tmp_path)  # a restart takes the same name back, so its MQTT session resumes
    assert again.name == name
    again.release()
    second.release()


def test_a_name_held_by_another_process_is_refused(tmp_path):
    holder = subprocess.Popen([sys.executable, "-c", "import sys, time; from pathlib import Path; "
                               "from ingest.worker import claim; c = claim(Path(sys.argv[1]), 'w1'); "
                               "print('held', flush=True); time.sleep(30)", str(tmp_path)],
                              stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "held"
        with pytest.raises(WorkerNameError, match=f"in use by pid {holder.pid}"):
            claim(tmp_path, "w1")
    finally:
        holder.kill()
        holder.wait()
        holder.stdout.close()
    claim(tmp_path, "w1").release()  # free again once the holder is gone


def test_a_bad_name_is_refused(tmp_path):
    with pytest.raises(WorkerNameError, match="--worker must match"):
        claim(tmp_path, "no spaces/allowed")
