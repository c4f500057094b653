"""The harness on tiny models: every field, stage times, a slowed model, bad protocols; on CUDA
where present."""

import time

import pytest
import torch
from torch import nn

from tests.contract_head import FakeTextCLIP
from zsseg_bench.data.catalog import MetadataCatalog
from zsseg_bench.modeling import HEAD_REGISTRY
from zsseg_bench.modeling.head import ZeroShotHead
from zsseg_bench.modeling.meta_arch import ZeroShotSegmentor
from zsseg_bench.modeling.stage_timer import stage
from zsseg_bench.speed import SpeedProtocol, benchmark_model
from zsseg_bench.speed.harness import PROTOCOL_FIELDS, RESULT_FIELDS
from zsseg_bench.speed.timing import time_calls
from zsseg_bench.utils.errors import OptionError, UserError, cli_flag

DATASET = "_test_speed_dataset"
CLASSES = ["background", "red circle", "blue square"]


@pytest.fixture(scope="module", autouse=True)
def _metadata():
    if DATASET not in MetadataCatalog.list():
        MetadataCatalog.get(DATASET).set(stuff_classes=CLASSES, seen_classes=[0, 1],
                                         unseen_classes=[2], ignore_label=255)


pytestmark = pytest.mark.usefixtures("one_thread")


class StagedHead(ZeroShotHead):
    """The contract head split into two named stages, optionally sleeping in the decoder."""

    def __init__(self, embed_dim: int, sleep_s: float = 0.0):
        super().__init__()
        self.inner = HEAD_REGISTRY.get("PixelContractHead")(embed_dim=embed_dim)
        self.sleep_s = sleep_s

    def scores(self, images, vocab, clip):  # noqa: ANN001, ANN201
        with stage("encoder"):
            feats = self.inner.proj(nn.functional.avg_pool2d(images, 4))
        with stage("decoder"):
            if self.sleep_s:
                time.sleep(self.sleep_s)
            return torch.einsum("bdhw,kd->bkhw", feats, vocab.embeddings)


def _model(sleep_s: float = 0.0) -> ZeroShotSegmentor:
    torch.manual_seed(0)
    clip = FakeTextCLIP()
    return ZeroShotSegmentor(head=StagedHead(clip.embed_dim, sleep_s), clip=clip,
                             train_dataset=DATASET, test_dataset=DATASET, setting="inductive",
                             templates="single", pixel_mean=[128.0] * 3, pixel_std=[64.0] * 3,
                             size_divisibility=32)


def _protocol(**kw) -> SpeedProtocol:
    return SpeedProtocol(**{"input_size": (40, 56), "warmup": 1, "iters": 4, "repeats": 2,
                            "num_images": 3, **kw})


def test_every_field_is_produced():
    result = benchmark_model(_model(), _protocol())
    assert set(RESULT_FIELDS) <= set(result)
    assert set(PROTOCOL_FIELDS) <= set(result["protocol"])
    lat = result["latency_ms"]
    assert 0 < lat["min"] <= lat["median"] <= lat["p90"] <= lat["max"] and lat["std"] >= 0
    assert result["fps"] == pytest.approx(1000 / lat["mean"])
    assert len(result["repeats"]) == 2 and all(f > 0 for f in result["repeats"])
    assert result["gflops"] > 0 and result["flops_error"] is None
    assert result["params"]["total"] == result["params"]["learnable"] > 0
    assert result["params"]["by_module"]["head"]["total"] == result["params"]["total"]
    assert result["peak_memory_mb"] > 0 and result["memory_kind"] == "cpu_rss"
    assert result["cpu_time_ms"] > 0
    p = result["protocol"]
    assert p["input_size"] == [40, 56] and p["batch_size"] == 1 and p["mode"] == "whole"
    assert p["vocabulary_size"] == len(CLASSES) and p["text_embeddings_cached"] is True
    assert p["dataset"] == DATASET and p["device"] == "cpu" and p["precision"] == "fp32"
    assert p["cuda_graphs"] is False and p["compile"] is None


def test_the_model_describes_its_own_inference():
    model = _model()
    model.test_mode, model.slide_crop, model.slide_stride = "slide", (32, 32), (24, 24)
    p = benchmark_model(model, _protocol(flops=False, breakdown=False))["protocol"]
    assert p["mode"] == "slide" and p["slide"] == {"crop": [32, 32], "stride": [24, 24]}
    assert p["vocabulary_size"] == len(CLASSES)
    # A module that does not describe itself records blanks, never guessed values.
    plain = nn.Sequential(nn.Identity())
    plain.forward = lambda batch: [{"sem_seg": x["image"].float()} for x in batch]
    p = benchmark_model(plain, _protocol(flops=False, breakdown=False))["protocol"]
    assert p["mode"] is None and p["vocabulary_size"] is None
    assert p["text_embeddings_cached"] is False


def test_breakdown_covers_the_stages_and_the_rest():
    result = benchmark_model(_model(sleep_s=0.02), _protocol(iters=3, repeats=1))
    stages = result["breakdown_ms"]
    assert set(stages) == {"encoder", "decoder", "other"}
    assert stages["decoder"] >= 20 and stages["encoder"] > 0 and stages["other"] >= 0
    assert sum(stages.values()) == pytest.approx(result["latency_ms"]["mean"], rel=1e-6)


def test_a_deliberately_slowed_model_is_measured_slower():
    fast = benchmark_model(_model(), _protocol(flops=False))
    slow = benchmark_model(_model(sleep_s=0.05), _protocol(flops=False))
    assert slow["latency_ms"]["min"] > fast["latency_ms"]["median"] + 25
    assert slow["fps"] < fast["fps"]
    assert slow["breakdown_ms"]["decoder"] > fast["breakdown_ms"]["decoder"] + 25


def test_low_precision_and_channels_last_run_and_are_recorded():
    result = benchmark_model(_model(), _protocol(precision="bf16", channels_last=True,
                                                 sdpa="math", iters=2, repeats=1, flops=False,
                                                 breakdown=False))
    p = result["protocol"]
    assert (p["precision"], p["channels_last"], p["sdpa"]) == ("bf16", True, "math")
    assert result["gflops"] is None and result["breakdown_ms"] == {}


def test_calls_rotate_among_inputs_and_warm_up_untimed():
    seen = []
    stats = time_calls(seen.append, ["a", "b", "c"], warmup=2, iters=2, repeats=2,
                       device="cpu")
    assert seen == ["a", "b", "c", "a", "b", "c"]
    assert len(stats.latencies_s) == 4 and len(stats.repeat_fps) == 2


@pytest.mark.parametrize(("changes", "message"), [
    ({"iters": 0}, "iters must be an integer >= 1"),
    ({"repeats": 0}, "repeats must be an integer >= 1"),
    ({"warmup": -1}, "warmup must be an integer >= 0"),
    ({"num_images": 0}, "num_images must be an integer >= 1"),
    ({"input_size": (0, 64)}, "input_size takes two positive integers"),
    ({"precision": "fp8"}, "precision 'fp8' is not one of fp32, fp16, bf16"),
    ({"sdpa": "fast"}, "sdpa 'fast' is not one of"),
    ({"compile": "turbo"}, "compile 'turbo' is not one of"),
    ({"device": "tpu"}, "device 'tpu': use cpu or cuda"),
    ({"cuda_graphs": True}, "cuda_graphs needs device cuda"),
])
def test_bad_protocols_are_rejected_with_clear_messages(changes, message):
    """The library names the protocol's fields (a command names its flags instead)."""
    with pytest.raises(OptionError, match=message.replace("(", r"\(")) as e:
        _protocol(**changes).validate()
    assert "--" not in str(e.value) and cli_flag("cuda_graphs") == "--cuda-graphs"


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the message without CUDA")
def test_cuda_without_a_gpu_is_a_user_error():
    with pytest.raises(UserError, match="CUDA is not available on this machine"):
        benchmark_model(_model(), _protocol(device="cuda"))


# --- On CUDA (only where a GPU is present): synchronised timing, CUDA memory, low precision and
# CUDA graphs.
needs_cuda = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")


@needs_cuda
def test_cuda_run_records_cuda_memory_and_a_separate_breakdown_pass():
    model = _model().to("cuda")
    result = benchmark_model(model, _protocol(device="cuda", precision="fp16"))
    assert result["memory_kind"] == "cuda_max_allocated" and result["peak_memory_mb"] > 0
    assert result["protocol"]["breakdown_pass"].startswith("a separate eager pass")
    assert {"encoder", "decoder", "other"} <= set(result["breakdown_ms"])


@needs_cuda
def test_cuda_graphs_capture_or_say_why_not():
    model = _model().to("cuda")
    result = benchmark_model(model, _protocol(device="cuda", cuda_graphs=True, flops=False))
    graphs = result["protocol"]["cuda_graphs"]
    assert graphs is True or (isinstance(graphs, str) and graphs.startswith("failed"))
    assert result["fps"] > 0
