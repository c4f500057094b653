"""``zsseg-bench predict`` through the CLI and the ``Predictor`` API, on toy images with custom
class names, and every bad input named in the command's contract."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from PIL import Image

from tests.predict.conftest import DATASETS
from zsseg_bench.cli import main

NAMES = ["background", "red circle", "blue square", "teal hexagon"]  # the last: no toy class


def _toy_images(toy_root):
    return sorted((toy_root / "synthetic" / "images" / "val").glob("*.jpg"))


def _predict(config, weights, *args):
    return main(["predict", "--config-file", str(config), "--weights", str(weights), *args,
                 *DATASETS])


def test_cli_writes_labels_overlays_and_areas(trained, toy_root, tmp_path, capsys):
    config, weights = trained
    image = _toy_images(toy_root)[0]
    out = tmp_path / "pred"
    assert _predict(config, weights, "--input", str(image), "--classes", ",".join(NAMES),
                    "--output", str(out)) == 0
    assert f"1 image(s), 4 classes -> {out}" in capsys.readouterr().out
    stem = image.stem
    with Image.open(image) as im:
        width, height = im.size
    with Image.open(out / f"{stem}.png") as im:
        assert im.mode == "L" and im.size == (width, height)
        labels = np.array(im)
    assert labels.max() < len(NAMES)  # labels inside the given vocabulary
    with Image.open(out / f"{stem}_overlay.png") as im:
        assert im.mode == "RGB" and im.width >= width and im.height > height  # + legend
    areas = json.loads((out / f"{stem}.json").read_text())
    assert (areas["height"], areas["width"]) == (height, width)
    counts = np.bincount(labels.ravel(), minlength=len(NAMES))
    assert {a["name"]: a["pixels"] for a in areas["class_areas"]} == {
        NAMES[i]: int(c) for i, c in enumerate(counts) if c}
    assert sum(a["pixels"] for a in areas["class_areas"]) == height * width
    pixels = [a["pixels"] for a in areas["class_areas"]]
    assert pixels == sorted(pixels, reverse=True)
    classes = json.loads((out / "classes.json").read_text())["classes"]
    # seen = a seen class of the training dataset; the last two are no toy classes
    assert [(c["name"], c["seen"]) for c in classes] == [
        ("background", True), ("red circle", True), ("blue square", False),
        ("teal hexagon", False)]


def test_cli_folder_glob_and_dataset_vocabulary(trained, toy_root, tmp_path):
    config, weights = trained
    images = _toy_images(toy_root)
    folder = images[0].parent
    out = tmp_path / "folder"
    assert _predict(config, weights, "--input", str(folder), "--vocabulary",
                    "engine_test_val", "--output", str(out)) == 0
    assert sorted(p.name for p in out.glob("*_overlay.png")) == [
        f"{p.stem}_overlay.png" for p in images]
    classes = json.loads((out / "classes.json").read_text())["classes"]
    assert len(classes) == 21 and sum(not c["seen"] for c in classes) == 5
    out = tmp_path / "glob"
    assert _predict(config, weights, "--input", str(folder / "*.jpg"), "--classes",
                    "background,red circle", "--output", str(out)) == 0
    assert len(list(out.glob("*_overlay.png"))) == len(images)


def _error(capsys) -> str:
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) >= 1 and err[-1].startswith("zsseg-bench predict: error: ")
    return err[-1]


def test_bad_inputs_are_one_line_errors(trained, toy_root, tmp_path, capsys):
    config, weights = trained
    image = str(_toy_images(toy_root)[0])
    out = str(tmp_path / "bad")
    broken = tmp_path / "broken.png"
    broken.write_bytes(b"not a png")
    assert _predict(config, weights, "--input", str(broken), "--classes", "a,b",
                    "--output", out) == 2
    assert "cannot read image file" in _error(capsys)
    assert _predict(config, weights, "--input", str(tmp_path / "none.png"), "--classes", "a",
                    "--output", out) == 2
    assert "no such file" in _error(capsys)
    assert _predict(config, weights, "--input", image, "--classes", " , ", "--output", out) == 2
    assert "blank class name" in _error(capsys)
    assert _predict(config, weights, "--input", image, "--classes", "cat,dog,Cat",
                    "--output", out) == 2
    assert "'Cat' is given twice" in _error(capsys)
    assert _predict(config, weights, "--input", image, "--vocabulary", "no_such_dataset",
                    "--output", out) == 2
    assert "is it registered" in _error(capsys)


def test_weights_of_another_method_are_refused(trained, toy_root, tmp_path, capsys):
    _, weights = trained  # PixelContractHead weights
    from tests.engine.helpers import write_config

    zegclip = write_config(tmp_path / "zegclip.yaml", MODEL__HEAD__NAME="ZegCLIPHead")
    assert _predict(zegclip, weights, "--input", str(_toy_images(toy_root)[0]), "--classes",
                    "background,red circle", "--output", str(tmp_path / "out")) == 2
    line = _error(capsys)
    assert "holds weights of PixelContractHead" in line and "ZegCLIPHead" in line


def test_python_api(trained, toy_root):
    from zsseg_bench.config.command_line import setup_cfg
    from zsseg_bench.engine.predictor import Predictor
    from zsseg_bench.utils.errors import UserError

    config, weights = trained
    cfg = setup_cfg(str(config), [*DATASETS, "MODEL.WEIGHTS", str(weights)])
    predictor = Predictor(cfg)
    image = np.array(Image.open(_toy_images(toy_root)[0]).convert("RGB"))
    out = predictor(image, NAMES)
    assert out["sem_seg"].shape == (len(NAMES), *image.shape[:2])
    assert torch.equal(out["labels"], out["sem_seg"].argmax(0))
    assert out["class_names"] == NAMES and out["is_seen"] == [True, True, False, False]
    # a file path gives the same; the text embeddings of a vocabulary are computed once
    calls = []
    embed = predictor.model.clip.embed_texts
    predictor.model.clip.embed_texts = lambda *a, **k: calls.append(a) or embed(*a, **k)
    again = predictor(str(_toy_images(toy_root)[0]), NAMES)
    assert torch.equal(again["labels"], out["labels"]) and calls == []
    predictor(image, NAMES[:2])
    assert len(calls) == 1
    for bad, match in (([], "empty"), (["a", "A"], "twice"), ("a,b", "not one string")):
        with pytest.raises(UserError, match=match):
            predictor(image, bad)
    with pytest.raises(UserError, match="H x W x 3 uint8"):
        predictor(image[..., 0], NAMES)
