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
    with Image.open(out / f"{stem}_overlay.png") as im:  # image | prediction, + legend
        assert im.mode == "RGB" and im.width >= 2 * width and im.height > height
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
    assert "dataset 'no_such_dataset' is not registered" in _error(capsys)
    assert _predict(config, weights, "--input", image, "--vocabulary", "voc_val",
                    "--output", out) == 2
    # (with detectron2 installed, its own voc_* datasets are suggested after it)
    assert "not registered; did you mean voc_zs_val" in _error(capsys)
    assert _predict(config, weights, "--input", image, "--classes", "a", "--output", out,
                    "--output-dir", str(tmp_path / "other")) == 2
    assert "name two folders: give one of them" in _error(capsys)
    for text, match in (("cat;dog", "holds ';': separate class names with commas"),
                        ('"cat","dog"', "is quoted: separate class names with commas"),
                        ("[cat, dog", "is not one: separate class names with commas"),
                        ("[1, 2]", "expected a list of class names (strings)")):
        assert _predict(config, weights, "--input", image, "--classes", text, "--output",
                        out) == 2
        assert match in _error(capsys)


def test_class_lists_and_files_are_read_as_written(trained, toy_root, tmp_path):
    config, weights = trained
    image = str(_toy_images(toy_root)[0])
    names = ["background", "red circle", "wall, brick wall"]  # a name with a comma (ADE-847)
    text = tmp_path / "classes.txt"
    text.write_text("# my classes\nbackground\n\nred circle\nwall, brick wall\n")
    listing = tmp_path / "list.json"
    listing.write_text(json.dumps(names))
    for i, option in enumerate((["--classes", json.dumps(names)],
                                ["--classes", repr(names)],
                                ["--classes-file", str(text)],
                                ["--classes-file", str(listing)],
                                ["--classes-file", str(tmp_path / "out0" / "classes.json")])):
        out = tmp_path / f"out{i + 1 if i < 4 else 'x'}"
        assert _predict(config, weights, "--input", image, *option, "--output", str(out)) == 0
        written = json.loads((out / "classes.json").read_text())["classes"]
        assert [c["name"] for c in written] == names, option
        if i == 0:  # the next runs read this run's classes.json
            (tmp_path / "out0").mkdir()
            (tmp_path / "out0" / "classes.json").write_text((out / "classes.json").read_text())


def test_an_unreadable_file_in_a_folder_is_skipped_with_a_summary(trained, toy_root, tmp_path,
                                                                   capsys):
    config, weights = trained
    folder = tmp_path / "photos"
    folder.mkdir()
    for image in _toy_images(toy_root)[:2]:
        (folder / image.name).write_bytes(image.read_bytes())
    (folder / "notes.png").write_bytes(b"not an image")
    out = tmp_path / "pred"
    assert _predict(config, weights, "--input", str(folder), "--classes",
                    "background,red circle", "--output", str(out)) == 1
    captured = capsys.readouterr()
    assert "2 image(s), 2 classes" in captured.out
    assert f"skipped 1 file(s) that are not readable images: {folder / 'notes.png'}" in \
        captured.err
    assert len(list(out.glob("*_overlay.png"))) == 2
    assert json.loads((out / "classes.json").read_text())["skipped"] == [
        str(folder / "notes.png")]


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
