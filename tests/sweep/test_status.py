"""A run's status.json: typed, read back as written, older files read unchanged."""

import json

import pytest

from zsseg_bench.sweep.status import RunState, RunStatus, StageStatus, read_status
from zsseg_bench.utils.errors import UserError

#: A status.json as sweeps wrote it before the status was typed (every field they wrote).
OLD_STATUS = {
    "run_id": "zegclip-synthetic-inductive-s0-abc", "state": "failed", "updated": 1.5,
    "stages": {
        "train": {"state": "done", "attempt": 2, "started": 1.0, "ended": 2.0, "returncode": 0,
                  "host": "h", "command": ["python", "-m", "zsseg_bench"], "pid": None},
        "speed": {"state": "failed", "attempt": 1, "returncode": 1, "error": "exit code 1"},
    },
    "job_id": "12_3", "job_log": "/x/log.err",
}


def test_an_older_status_file_reads_and_writes_back_the_same(tmp_path):
    (tmp_path / "status.json").write_text(json.dumps(OLD_STATUS))
    status = read_status(tmp_path)
    assert status.state is RunState.FAILED and status.stages["train"].attempt == 2
    assert status.failure() == "speed: exit code 1"
    status.save(tmp_path)
    again = json.loads((tmp_path / "status.json").read_text())
    expected = json.loads(json.dumps(OLD_STATUS))
    del expected["stages"]["train"]["pid"]  # unset fields are left out
    assert {k: v for k, v in again.items() if k != "updated"} == {
        k: v for k, v in expected.items() if k != "updated"}
    assert again["updated"] > OLD_STATUS["updated"]


@pytest.mark.parametrize("content, match", [
    ("{not json", "status.json is malformed"),
    (json.dumps({"stages": {}}), "no 'state'"),
    (json.dumps({"state": "exploded"}), "'exploded' is not a valid RunState"),
])
def test_a_malformed_status_names_the_file_and_the_fix(tmp_path, content, match):
    (tmp_path / "status.json").write_text(content)
    with pytest.raises(UserError, match=match) as info:
        read_status(tmp_path)
    assert str(tmp_path / "status.json") in str(info.value) and "delete it" in str(info.value)


def test_settle_and_ending_a_run():
    status = RunStatus("r", stages={"train": StageStatus(RunState.DONE),
                                    "speed": StageStatus(RunState.RUNNING)})
    assert status.settle(["train", "speed"]).state is RunState.RUNNING
    assert status.running_stage() == "speed" and status.done_except(["speed"])
    status.end_running(RunState.INTERRUPTED, job_id="7")
    assert status.stages["speed"].state is RunState.INTERRUPTED and status.job_id == "7"
    assert status.settle(["train", "speed"]).state is RunState.INTERRUPTED
    status.stages["speed"].state = RunState.DONE
    assert status.settle(["train", "speed"]).state is RunState.DONE
    assert not status.done_except(["speed"])
    with pytest.raises(TypeError, match="unknown run fact"):
        status.end_running(RunState.FAILED, reason="x")
