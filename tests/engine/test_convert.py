"""The registry of official checkpoint formats and the checks every conversion goes through
(with a format registered here: the core knows no method)."""

import pytest
import torch
from torch import nn

from zsseg_bench.engine import convert as conv
from zsseg_bench.engine.convert import (
    Converted,
    check_frozen,
    convert_state,
    get_checkpoint_format,
    register_checkpoint_format,
)
from zsseg_bench.utils.errors import UserError


class _Model(nn.Module):
    """A frozen part (``clip``) and a trainable one (``head``), as the meta-architecture."""

    def __init__(self):
        super().__init__()
        self.clip = nn.Linear(3, 3)
        self.clip.requires_grad_(False)
        self.head = nn.Linear(3, 2)


def _rename(weights, model):
    """Official ``dec.*`` -> ``head.*``; ``enc.*`` are frozen (compared); ``junk`` dropped."""
    state = {"head." + k[4:]: v for k, v in weights.items() if k.startswith("dec.")}
    expected = {"clip." + k[4:]: (k, v) for k, v in weights.items() if k.startswith("enc.")}
    check_frozen(model.state_dict(), expected, "the test's frozen part")
    return Converted(state=state, used={k for k in weights if k.startswith("dec.")},
                     checked={k for k in weights if k.startswith("enc.")},
                     dropped={k: "unused" for k in weights if k == "junk"})


FMT = register_checkpoint_format("test-mmseg", head="TestHead", container="state_dict",
                                 convert=_rename, source="nowhere @ 0")
register_checkpoint_format("test-d2", head="TestHead", container="model", convert=_rename)


def _official(model):
    weights = {"dec." + k: v.clone() for k, v in model.head.state_dict().items()}
    weights.update({"enc." + k: v.clone() for k, v in model.clip.state_dict().items()})
    weights["junk"] = torch.zeros(1)
    return weights


def test_a_format_registers_with_one_call_and_is_found_by_name():
    assert get_checkpoint_format("test-mmseg") is FMT
    again = register_checkpoint_format("test-mmseg", head="TestHead", container="state_dict",
                                       convert=_rename, source="nowhere @ 0")
    assert again == FMT  # the module imported a second time: no-op
    with pytest.raises(ValueError, match="already registered"):
        register_checkpoint_format("test-mmseg", head="Other", container="state_dict",
                                   convert=lambda w, m: Converted({}))
    with pytest.raises(UserError, match="unknown checkpoint format; known formats: .*test-d2"):
        get_checkpoint_format("nope")


def test_the_state_is_exactly_the_models_trainable_tensors():
    torch.manual_seed(0)
    model = _Model()
    state = convert_state(FMT, _official(model), model)
    assert set(state) == {"head.weight", "head.bias"}
    assert torch.equal(state["head.weight"], model.head.weight)


@pytest.mark.parametrize("edit, message", [
    (lambda w: w.update({"dec2.extra": torch.zeros(1)}), r"unknown keys .*: 1 \(dec2.extra\)"),
    (lambda w: w.pop("dec.bias"), r"missing keys 1 \(head.bias\)"),
    (lambda w: w.update({"dec.weight": torch.zeros(4, 3)}),
     r"shape mismatch \(file vs model\) 1 \(head.weight \(4, 3\) vs \(2, 3\)\)"),
    (lambda w: w.update({"dec.clip_bias": torch.zeros(3)}), r"unexpected keys 1"),
    (lambda w: w["enc.weight"].add_(1.0), r"1 frozen tensor\(s\) of the checkpoint differ from "
                                          r"the test's frozen part \(enc.weight: max \|diff\| 1"),
])
def test_every_mismatch_is_one_error_naming_the_keys(edit, message):
    torch.manual_seed(0)
    model = _Model()
    weights = _official(model)
    edit(weights)
    with pytest.raises(UserError, match=message) as info:
        convert_state(FMT, weights, model)
    assert "\n" not in str(info.value)


def test_files_of_another_layout_are_named(tmp_path):
    fmt = get_checkpoint_format("test-mmseg")
    with pytest.raises(UserError, match=r"is not a test-mmseg checkpoint: .*'state_dict', the "
                                        r"file's top-level keys are iteration, model; its "
                                        r"layout is that of --from (.* / )?test-d2"):
        conv.extract_weights({"model": {"a": torch.zeros(1)}, "iteration": 3}, fmt, "d2.pth")
    suite = {"model": {"a": torch.zeros(1)}, "meta": {"format": 1, "head": "TestHead"}}
    with pytest.raises(UserError, match="a zsseg-bench checkpoint already"):
        conv.extract_weights(suite, fmt, "model_final.pth")
    with pytest.raises(UserError, match="holds a list"):
        conv.extract_weights([1, 2], fmt, "x.pth")


def test_unreadable_and_unsafe_files_are_one_line_errors(tmp_path):
    with pytest.raises(UserError, match="not found"):
        conv.read_checkpoint(str(tmp_path / "missing.pth"), trust=False)
    (tmp_path / "text.pth").write_text("not a checkpoint")
    with pytest.raises(UserError, match="cannot read .*text.pth|holds Python objects"):
        conv.read_checkpoint(str(tmp_path / "text.pth"), trust=False)
    torch.save({"state_dict": {}, "meta": {"obj": _Model}}, tmp_path / "pickled.pth")
    with pytest.raises(UserError, match="--trust-source"):
        conv.read_checkpoint(str(tmp_path / "pickled.pth"), trust=False)
    assert conv.read_checkpoint(str(tmp_path / "pickled.pth"), trust=True)["meta"]["obj"] is _Model
