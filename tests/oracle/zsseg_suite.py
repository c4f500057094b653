"""The suite's side of the zsseg.baseline oracle, shared by ``test_zsseg_equal.py`` and
``zsseg_speed.py``: inputs and a random CLIP for both sides, the official script started in a
subprocess (``zsseg_official.py`` under the oracle environment's python), the suite's model built
from its paper config and loaded from the official checkpoint through the zsseg converter, every
stage recorded, and the stage-by-stage comparison."""

from __future__ import annotations

import os
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F

from zsseg_bench.config.command_line import setup_cfg
from zsseg_bench.modeling import build_model
from zsseg_bench.projects.two_stage.convert import converted_state

from .compare import relative_error
from .zsseg_official import timed as _timed  # the same timing on both sides (torch only)

REPO = Path(__file__).resolve().parents[2]
HERE = Path(__file__).resolve().parent
#: Final scores: the issue's target. Intermediate stages: the same bound. Losses: tighter.
FINAL_RTOL = 1e-4
LOSS_RTOL = 1e-5
OPTS = ["MODEL.DEVICE", "cpu", "MODEL.TWO_STAGE.BACKBONE.WEIGHTS", "",
        "MODEL.TWO_STAGE.BACKBONE.RANDOM_INIT", "True"]


class OracleError(RuntimeError):
    """The official script failed (its output in the message)."""


# ------------------------------------------------------------------------------ inputs
def write_clip(path: Path) -> None:
    """A random ViT-B/16 CLIP in OpenAI's names, in fp16 as OpenAI ships its weights (the
    official ``build_model`` rounds every weight to fp16 before ``clip.load`` casts back)."""
    import open_clip

    torch.manual_seed(0)
    model = open_clip.create_model("ViT-B-16", pretrained=None, force_quick_gelu=True)
    torch.save({k: v.half() for k, v in model.state_dict().items()}, path)


def _smooth(h: int, w: int, c: int, g: torch.Generator) -> torch.Tensor:
    x = torch.rand(1, c, h // 16 + 1, w // 16 + 1, generator=g)
    return F.interpolate(x, size=(h, w), mode="bilinear", align_corners=False)[0]


def write_inputs(path: Path, classes: list[int], label_ids: list[int],
                 shapes: tuple[tuple[int, int], ...] = ((128, 128), (96, 160)),
                 sizes: tuple[tuple[int, int], ...] = ((128, 128), (192, 320))
                 ) -> dict[str, Any]:
    """Smooth random images of ``shapes`` (default: a square and a non-square one, batched: both
    padded to 128 x 160), scored at ``sizes`` (default: the second at twice its size); label
    maps over ``label_ids`` (ids into ``classes``; the unseen ones become ignore for training),
    the top rows ignored."""
    g = torch.Generator().manual_seed(0)
    images = [(_smooth(h, w, 3, g) * 255).round().to(torch.uint8) for h, w in shapes]
    labels = []
    for img in images:
        lab = torch.tensor(label_ids)[_smooth(img.shape[1], img.shape[2], len(label_ids),
                                               g).argmax(0)]
        lab[:4] = 255
        labels.append(lab.long())
    inputs = {"images": images, "sizes": [tuple(s) for s in sizes], "labels": labels,
              "classes": classes}
    torch.save(inputs, path)
    return inputs


# ------------------------------------------------------------------------------ the suite side
@dataclass
class SuiteRun:
    stages: dict[str, Any] = field(default_factory=dict)
    sem_seg: list[torch.Tensor] = field(default_factory=list)
    losses: dict[str, float] = field(default_factory=dict)
    matches: list[Any] = field(default_factory=list)
    grads: dict[str, torch.Tensor] = field(default_factory=dict)
    names: list[str] = field(default_factory=list)
    seen: list[bool] = field(default_factory=list)
    text: torch.Tensor | None = None
    texts: tuple[torch.Tensor, torch.Tensor] | None = None
    time_s: dict[str, list[tuple[float, float]]] = field(default_factory=dict)


def build_suite_model(config: str, clip: Path, checkpoint: Path, overrides: list[str]) -> Any:
    """The suite's model of ``configs/<config>`` with the official checkpoint's weights."""
    cfg = setup_cfg(str(REPO / "configs" / config),
                    OPTS + ["MODEL.CLIP.WEIGHTS", str(clip)] + overrides)
    model = build_model(cfg)
    official = torch.load(checkpoint, map_location="cpu", weights_only=True)
    model.load_state_dict(converted_state(official, model), strict=False)
    for m in model.modules():  # as the oracle: no dropout (random masks cannot be shared)
        if isinstance(m, torch.nn.Dropout):
            m.p = 0.0
        elif isinstance(m, torch.nn.MultiheadAttention):
            m.dropout = 0.0
    return model.eval()


def run_suite(model: Any, inputs: dict[str, Any], dataset: str, train: bool,
              timed: int = 0) -> SuiteRun:
    """Inference on the inputs (every stage recorded) and, with ``train``, the training losses
    on their labels (unseen classes ignored, as the mapper makes them). ``timed``: that many
    more, warm inferences and training steps, timed (``time_s``: (wall, CPU) seconds each)."""
    run = SuiteRun()
    head, clip = model.head, model.clip
    hooks = [
        head.backbone.register_forward_hook(lambda m, i, o: run.stages.setdefault("backbone", o)),
        head.pixel_decoder.register_forward_hook(
            lambda m, i, o: run.stages.setdefault("pixel_decoder", o)),
        head.decoder.register_forward_hook(lambda m, i, o: run.stages.setdefault("decoder", o)),
    ]
    record = {"crops": [], "crop_embeddings": [], "clip_probs": [], "valid": []}
    encode_image, prepare, classify = clip.encode_image, head.prepare_crops, head.classify_crops

    def encode(x: torch.Tensor) -> torch.Tensor:
        out = encode_image(x)
        record["crops"].append(x.detach().clone())
        record["crop_embeddings"].append(out.detach().clone())
        return out

    def prep(*args: Any, **kwargs: Any) -> Any:
        crops = prepare(*args, **kwargs)
        record["valid"].append(crops.valid.clone())
        return crops

    def cls(*args: Any, **kwargs: Any) -> Any:
        out = classify(*args, **kwargs)
        record["clip_probs"].append(out.detach().clone())
        return out

    clip.encode_image, head.prepare_crops, head.classify_crops = encode, prep, cls
    vocab = model.vocabulary(dataset, trainable_only=False)
    run.names, run.seen, run.text = vocab.names, vocab.is_seen.tolist(), vocab.embeddings
    with torch.no_grad():
        run.texts = head.texts(clip, vocab)
    batch = [{"image": img, "height": s[0], "width": s[1]}
             for img, s in zip(inputs["images"], inputs["sizes"])]
    try:
        with torch.no_grad():
            run.sem_seg = [r["sem_seg"] for r in model(batch)]
    finally:
        for h in hooks:
            h.remove()
        del clip.encode_image, head.prepare_crops, head.classify_crops
    run.time_s["inference"] = [_timed(model, batch) for _ in range(timed)]
    run.stages.update(record)
    embeddings, _ = run.stages["decoder"][-1]
    run.stages["query_logits"] = head.classify_queries(embeddings, run.texts[0]).detach()
    if train:
        _train_step(model, inputs, dataset, run, timed)
    return run


def _train_step(model: Any, inputs: dict[str, Any], dataset: str, run: SuiteRun,
                timed: int) -> None:
    seen = model.vocabulary(dataset, trainable_only=True).class_ids
    batch = []
    for img, lab in zip(inputs["images"], inputs["labels"]):
        lab = lab.clone()
        lab[(lab != 255) & ~torch.isin(lab, seen)] = 255
        batch.append({"image": img, "sem_seg": lab, "height": img.shape[1], "width": img.shape[2]})
    matcher = model.head.criterion.matcher
    forward = matcher.forward

    def match(*args: Any, **kwargs: Any) -> Any:
        out = forward(*args, **kwargs)
        run.matches.append(out)
        return out

    matcher.forward = match
    model.train()
    try:
        losses = model(batch)
        sum(losses.values()).backward()
    finally:
        del matcher.forward
    run.losses = {k: float(v.detach()) for k, v in losses.items()}
    run.grads = {n: p.grad.clone() for n, p in model.named_parameters() if p.grad is not None}
    run.time_s["train_step"] = [_timed(model, batch, backward=True) for _ in range(timed)]
    model.zero_grad()
    model.eval()




# ------------------------------------------------------------------------------ the official side
def start_official(python: str, config: str, clip: Path, inputs: Path, work: Path,
                   extra: list[str] = (), threads: int = 1) -> subprocess.Popen:
    src = Path(os.path.abspath(python)).parents[1] / "src" / "zsseg.baseline-d77c3af"
    src = Path(os.environ.get("ZSSEG_ORACLE_ZSSEG_SRC", src))
    cmd = [python, str(HERE / "zsseg_official.py"), "--src", str(src), "--config", config,
           "--clip", str(clip), "--inputs", str(inputs), "--out", str(work / "official.pt"),
           "--checkpoint", str(work / "official_model.pth"), "--threads", str(threads), *extra]
    env = {**os.environ, "OMP_NUM_THREADS": str(threads), "PYTHONWARNINGS": "ignore"}
    return subprocess.Popen(cmd, cwd=work, env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True)


def wait_for(proc: subprocess.Popen, path: Path, timeout: float = 600) -> None:
    """Waits until ``path`` exists (the official script writes it atomically) or the process
    ended; a failed process fails the test with the end of its output."""
    start = time.time()
    while not path.exists():
        if proc.poll() is not None and not path.exists():
            out = proc.stdout.read() if proc.stdout else ""
            raise OracleError(f"the official zsseg script failed ({proc.returncode}):\n"
                              f"{out[-3000:]}")
        if time.time() - start > timeout:
            proc.kill()
            raise OracleError(f"the official zsseg script did not write {path.name} in "
                              f"{timeout} s")
        time.sleep(0.5)


def finish(proc: subprocess.Popen, out: Path) -> dict[str, Any]:
    output, _ = proc.communicate(timeout=600)
    if proc.returncode != 0:
        raise OracleError(f"the official zsseg script failed ({proc.returncode}):\n"
                          f"{output[-3000:]}")
    return torch.load(out, map_location="cpu", weights_only=False)


# ------------------------------------------------------------------------------ comparison
def rel(a: torch.Tensor, b: torch.Tensor) -> float:
    """:func:`~tests.oracle.compare.relative_error`, infinite for tensors of other shapes (a
    flipped option may change how many crops there are: a failed row, not an error)."""
    return relative_error(a, b) if a.shape == b.shape else float("inf")


def stage_table(official: dict[str, Any], ours: SuiteRun) -> list[tuple[str, float, float]]:
    """(stage, relative difference, tolerance) of everything both sides compute."""
    o = official["stages"]
    rows: list[tuple[str, float, float]] = []
    for name in ("res2", "res3", "res4", "res5"):
        rows.append((f"backbone {name}", rel(ours.stages["backbone"][name],
                                             o["backbone"][0][name]), FINAL_RTOL))
    rows.append(("pixel decoder (mask features)",
                 rel(ours.stages["pixel_decoder"][0], o["pixel_decoder"][0][0]), FINAL_RTOL))
    dec = o["decoder"][0]
    official_layers = [(a["pred_logits"], a["pred_masks"]) for a in dec["aux_outputs"]]
    official_layers.append((dec["pred_logits"], dec["pred_masks"]))
    emb = max(rel(e, F.normalize(oe, dim=-1))
              for (e, _), (oe, _) in zip(ours.stages["decoder"], official_layers))
    masks = max(rel(m, om) for (_, m), (_, om) in zip(ours.stages["decoder"], official_layers))
    rows.append(("decoder: query embeddings, 6 layers", emb, FINAL_RTOL))
    rows.append(("decoder: mask logits, 6 layers", masks, FINAL_RTOL))
    official_q = torch.stack([args[0] for args, _ in o["semantic_inference"]])
    rows.append(("query classifier logits", rel(ours.stages["query_logits"], official_q),
                 FINAL_RTOL))
    valid = torch.stack([v for _, v in o["crops"]])
    same_valid = torch.equal(ours.stages["valid"][0].cpu(), valid)
    rows.append(("non-empty proposals (valid flags)", 0.0 if same_valid else float("inf"), 0.0))
    crops = torch.cat([c for c, _ in o["crops"] if c is not None])
    rows.append((f"CLIP crops ({len(crops)})", rel(torch.cat(ours.stages["crops"]), crops),
                 FINAL_RTOL))
    rows.append(("CLIP crop embeddings", rel(torch.cat(ours.stages["crop_embeddings"]),
                                             torch.cat(o["crop_embeddings"])), FINAL_RTOL))
    official_probs = torch.cat([F.softmax(lg[:, :-1], -1) for lg, _ in o["clip_logits"]
                                if lg is not None])
    mine = ours.stages["clip_probs"][0][ours.stages["valid"][0]]
    rows.append(("CLIP crop probabilities", rel(mine, official_probs), FINAL_RTOL))
    for i, (s, os_) in enumerate(zip(ours.sem_seg, official["sem_seg"])):
        rows.append((f"final scores, image {i} {tuple(s.shape[-2:])}", rel(s, os_), FINAL_RTOL))
        same = float((s.argmax(0) != os_.argmax(0)).sum())
        rows.append((f"arg-max differences, image {i}", same, 0.0))
    return rows


def failures(rows: list[tuple[str, float, float]]) -> list[str]:
    return [f"{name}: {value:.3g} > {tol:g}" for name, value, tol in rows if not value <= tol]


def print_table(title: str, rows: list[tuple[str, float, float]]) -> None:
    print(f"\n{title}\n" + "\n".join(f"  {name:<42} {value:.2e} (<= {tol:g})"
                                      for name, value, tol in rows))
