"""``zsseg-bench predict``: segment your own images with your own class names.

::

    zsseg-bench predict --config-file C --weights W --input IMG|DIR|GLOB \\
        (--classes "cat,dog,grass" | --classes-file F | --vocabulary DATASET) [--output D]

(the formats of the class names: :mod:`zsseg_bench.commands.predict_classes`). For each input
image ``<stem>`` the output folder gets

- ``<stem>.png``: the label map, one id per pixel into the class list (8-bit; 16-bit beyond 256
  classes);
- ``<stem>_overlay.png``: the image beside the prediction's colours over it (region borders in
  white; a class named after a colour is drawn in that colour), with a legend of the classes
  present (a class without training labels is marked ``[unseen]``);
- ``<stem>.json``: the image's size and the area of each class present (pixels, fraction),
  largest first;

and ``classes.json`` the class list (ids, names, seen or not, legend colours). Works with every
method: the config names the method, ``--weights`` the checkpoint `zsseg-bench train` wrote.
The Python API is :class:`zsseg_bench.engine.predictor.Predictor`.

A folder or glob with a file that cannot be read as an image skips that file with a warning
and goes on (a folder of photos often holds a stray file; losing the rest of the folder to it
helps nobody); the summary names the skipped files and the exit code is 1. A single ``--input``
image that cannot be read is an error (exit code 2), as in detectron2's demo.
"""

from __future__ import annotations

import argparse
import glob
import os
import sys

from zsseg_bench.utils.errors import UserError

DEFAULT_OUTPUT = os.path.join("output", "predict")
#: File extensions taken from a folder given as ``--input``.
IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".bmp", ".gif", ".tif", ".tiff", ".webp")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """``--config-file``, ``--weights``, ``--input``, ``--classes`` | ``--vocabulary``,
    ``--output``, ``KEY VALUE`` overrides."""
    from zsseg_bench.config.command_line import add_config_arguments

    parser.add_argument("--weights", default=None, metavar="CKPT",
                        help="a checkpoint written by `zsseg-bench train` (model_final.pth); "
                             "default: MODEL.WEIGHTS")
    parser.add_argument("--input", required=True, metavar="IMG|DIR|GLOB",
                        help="an image, a folder of images, or a glob pattern (quote it)")
    names = parser.add_mutually_exclusive_group(required=True)
    names.add_argument("--classes", metavar="NAMES",
                       help='comma-separated class names, e.g. "cat,dog,grass", or a list, '
                            '\'["cat", "dog"]\'')
    names.add_argument("--classes-file", metavar="FILE",
                       help="a file of class names: one per line, a JSON list, or a "
                            "classes.json written by predict")
    names.add_argument("--vocabulary", metavar="DATASET",
                       help="the class list of a registered dataset, e.g. voc_zs_val")
    parser.add_argument("--output", default=None, metavar="DIR",
                        help=f"folder of the predictions (default {DEFAULT_OUTPUT}; same as "
                             "--output-dir)")
    add_config_arguments(parser)


def input_images(spec: str) -> list[str]:
    """The image files ``--input`` names: one file, a folder's images (sorted), or the files a
    glob pattern matches (sorted).

    Raises:
        UserError: nothing matches, or two images share a file stem (their outputs would
            collide).
    """
    if os.path.isdir(spec):
        paths = sorted(os.path.join(spec, n) for n in os.listdir(spec)
                       if n.lower().endswith(IMAGE_EXTENSIONS))
        what = f"no image ({', '.join(IMAGE_EXTENSIONS)}) in the folder {spec}"
    elif glob.has_magic(spec):
        paths = sorted(p for p in glob.glob(spec, recursive=True) if os.path.isfile(p))
        what = f"no file matches --input {spec!r}"
    else:
        paths = [spec] if os.path.isfile(spec) else []
        what = f"--input {spec}: no such file or folder"
    if not paths:
        raise UserError(what)
    stems: dict[str, str] = {}
    for path in paths:
        stem = os.path.splitext(os.path.basename(path))[0]
        if stem in stems:
            raise UserError(f"--input: {stems[stem]} and {path} share the name '{stem}', so "
                            f"their outputs would collide; predict them separately")
        stems[stem] = path
    return paths


def class_names_of(args: argparse.Namespace) -> list[str]:
    """The names of ``--classes``, ``--classes-file`` or the ``--vocabulary`` dataset."""
    from zsseg_bench.commands.predict_classes import parse_classes, read_classes_file
    from zsseg_bench.engine.predictor import check_class_names

    if args.vocabulary:
        from zsseg_bench.data.catalog import class_split

        return check_class_names(class_split(args.vocabulary)[0])
    if args.classes_file:
        return check_class_names(read_classes_file(args.classes_file))
    return check_class_names(parse_classes(args.classes))


def output_dir_of(args: argparse.Namespace) -> str:
    """``--output`` or ``--output-dir`` (the same option; two different folders are an
    error), default :data:`DEFAULT_OUTPUT`."""
    if args.output and args.output_dir and \
            os.path.abspath(args.output) != os.path.abspath(args.output_dir):
        raise UserError(f"--output {args.output} and --output-dir {args.output_dir} name two "
                        "folders: give one of them")
    return args.output or args.output_dir or DEFAULT_OUTPUT


def class_areas(labels, names: list[str]) -> list[dict]:  # noqa: ANN001  (an int array)
    """Pixels and fraction of the image of each class present, largest first."""
    import numpy as np

    counts = np.bincount(labels.ravel(), minlength=len(names))
    total = int(labels.size)
    order = sorted((i for i in range(len(names)) if counts[i] > 0), key=lambda i: -counts[i])
    return [{"id": i, "name": names[i], "pixels": int(counts[i]),
             "fraction": round(float(counts[i]) / total, 6)} for i in order]


def save_label_png(path: str, labels, num_classes: int) -> None:  # noqa: ANN001
    """Writes a label map as an 8-bit PNG (16-bit beyond 256 classes), atomically."""
    import io

    import numpy as np
    from PIL import Image

    from zsseg_bench.utils.file_io import atomic_write_bytes

    dtype = np.uint8 if num_classes <= 256 else np.uint16
    buffer = io.BytesIO()
    Image.fromarray(labels.astype(dtype)).save(buffer, format="PNG")
    atomic_write_bytes(path, buffer.getvalue())


def run(args: argparse.Namespace) -> int:
    """Predicts every input image; returns the exit code (1 when a file was skipped)."""
    import logging

    import zsseg_bench.data  # noqa: F401  (registers the datasets --vocabulary names)
    from zsseg_bench.data.image_io import read_image
    from zsseg_bench.engine.predictor import IMAGE_HINT, Predictor
    from zsseg_bench.engine.session import command_session
    from zsseg_bench.utils.file_io import atomic_write_json
    from zsseg_bench.utils.visualize import class_palette, draw_overlay, save_png

    images = input_images(args.input)
    names = class_names_of(args)  # bad names fail before the model is built
    opts = list(args.opts or [])
    if args.weights:
        opts += ["MODEL.WEIGHTS", args.weights]
    with command_session(args.config_file, opts, output_dir_of(args),
                         command="predict") as session:
        cfg = session.cfg
        if not cfg.MODEL.WEIGHTS:
            raise UserError("no weights: pass --weights CKPT (a model_final.pth written by "
                            "`zsseg-bench train`) or set MODEL.WEIGHTS")
        predictor = Predictor(cfg)
        colours = class_palette(names)
        is_seen: list[bool] = []
        out = session.output_dir
        skipped: list[str] = []
        for path in images:
            try:
                image = read_image(path, "RGB", hint=IMAGE_HINT)
            except UserError as e:
                if len(images) == 1:
                    raise
                logging.getLogger(__name__).warning("skipped: %s", e)
                skipped.append(path)
                continue
            model_input = image if cfg.INPUT.FORMAT == "RGB" else image[:, :, ::-1]
            result = predictor(model_input, names)
            labels = result["labels"].cpu().numpy()
            is_seen = result["is_seen"]
            unseen = [i for i, seen in enumerate(is_seen) if not seen]
            stem = os.path.splitext(os.path.basename(path))[0]
            save_label_png(str(out / f"{stem}.png"), labels, len(names))
            save_png(out / f"{stem}_overlay.png",
                     draw_overlay(image, labels, names, unseen, colours, title=stem))
            atomic_write_json(out / f"{stem}.json", {
                "image": os.path.abspath(path), "height": int(labels.shape[0]),
                "width": int(labels.shape[1]), "class_areas": class_areas(labels, names)})
        if len(skipped) == len(images):
            raise UserError(f"none of the {len(images)} input files could be read as an "
                            f"image; {IMAGE_HINT}")
        atomic_write_json(out / "classes.json", {
            "weights": cfg.MODEL.WEIGHTS,
            "classes": [{"id": i, "name": n, "seen": s, "colour": colours[i].tolist()}
                        for i, (n, s) in enumerate(zip(names, is_seen))],
            "skipped": skipped})
        session.log.write({"type": "event", "event": "predict",
                           "images": len(images) - len(skipped), "classes": len(names),
                           "skipped": skipped})
        if session.is_main_process:
            print(f"{len(images) - len(skipped)} image(s), {len(names)} classes -> {out}")
            if skipped:
                print(f"zsseg-bench predict: skipped {len(skipped)} file(s) that are not "
                      f"readable images: {', '.join(skipped)}", file=sys.stderr)
    return 1 if skipped else 0
