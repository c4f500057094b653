"""Stage timing: a no-op outside speed runs, accumulating and nesting inside them."""

import time

from zsseg_bench.modeling.stage_timer import StageTimer, active_timer, stage


def test_stage_is_a_no_op_without_a_timer():
    assert active_timer() is None
    with stage("anything"):
        pass
    assert active_timer() is None


def test_stages_accumulate_and_nest():
    with StageTimer("cpu") as timer:
        assert active_timer() is timer
        for _ in range(2):
            with stage("encoder"):
                time.sleep(0.01)
                with stage("inner"):
                    time.sleep(0.005)
        with stage("decoder"):
            pass
    assert active_timer() is None
    assert set(timer.totals_s) == {"encoder", "encoder/inner", "decoder"}
    assert timer.calls == {"encoder": 2, "encoder/inner": 2, "decoder": 1}
    assert timer.totals_s["encoder"] >= 0.03 > timer.totals_s["encoder/inner"] >= 0.01
    # nested time is part of its parent, so it is not added twice
    assert timer.top_level_s() == timer.totals_s["encoder"] + timer.totals_s["decoder"]


def test_timers_nest_and_restore_the_previous_one():
    with StageTimer("cpu") as outer:
        with StageTimer("cpu") as inner, stage("a"):
            pass
        with stage("b"):
            pass
    assert set(inner.totals_s) == {"a"} and set(outer.totals_s) == {"b"}
