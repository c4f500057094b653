"""Machinery shared by the prepare scripts of the real benchmarks (``datasets/prepare_*.py``).

Each script turns an official download into single-channel label PNGs of contiguous class ids
(255 = ignore; 16-bit PNGs with 65535 = ignore for datasets of more classes), one folder per
split, and writes last a *manifest* beside the folder
(``<label_dir>.json``: the stems and image sizes of the split) that marks the split complete.
What the scripts share lives here, once:

- :class:`RawLabelMapping`: raw value -> contiguous id; an unexpected raw value is a
  :class:`UnexpectedLabelValueError` naming the file and the values.
- :func:`paired_folder_jobs`: the jobs of a split kept as an image folder and a label folder.
- :class:`ConvertJob` / :func:`convert_one`: converts one label file, idempotently: a finished
  output is kept (outputs are written atomically, so an existing file is complete), which also
  makes an interrupted run resume where it stopped.
- :func:`run_jobs`: runs the jobs in a process pool with a progress bar.
- :func:`finish_split`: verifies and prints the image / label counts, writes the manifest.
- :func:`add_common_arguments` / :func:`run_main`: the command line every script shares.
"""

from __future__ import annotations

import argparse
import functools
import io
import json
import multiprocessing
import os
import sys
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
from PIL import Image, UnidentifiedImageError
from tqdm import tqdm

from zsseg_bench.data.catalog import DATASETS_ENV, get_datasets_root
from zsseg_bench.data.file_listing import files_by_stem, listing
from zsseg_bench.data.zero_shot import IGNORE_LABEL, WIDE_IGNORE_LABEL
from zsseg_bench.utils.errors import UserError
from zsseg_bench.utils.file_io import atomic_write_bytes, atomic_write_json

if TYPE_CHECKING:  # the loading side imports this module: no runtime import back
    from zsseg_bench.data.datasets.prepared import PreparedSplit

#: Version of the manifest format; a manifest of another version means "prepare again".
MANIFEST_VERSION = 1
#: Default number of worker processes.
DEFAULT_WORKERS = min(8, os.cpu_count() or 1)


class UnexpectedLabelValueError(UserError):
    """A raw label file holds a value that the official format does not define."""


# ---------------------------------------------------------------------------------------------
# Raw values -> contiguous ids
# ---------------------------------------------------------------------------------------------
class RawLabelMapping:
    """Maps raw label values of an official format to contiguous ids, rejecting the others.

    Args:
        table: raw value -> contiguous id (0..254, or 255 = ignore; for datasets with more
            classes, *wide* ids 0..65534 and 65535 = ignore); values not in the table are
            unexpected.
        description: the expected raw values in words, for error messages (e.g.
            ``"0..20 and 255 (VOC class ids)"``).
    """

    def __init__(self, table: Mapping[int, int], description: str):
        if min(table) < 0 or not all(0 <= v <= WIDE_IGNORE_LABEL for v in table.values()):
            raise ValueError(f"raw values must be >= 0 and contiguous ids in "
                             f"0..{WIDE_IGNORE_LABEL}")
        self.description = description
        #: uint8 when every id fits (255 = ignore), else uint16 (wide labels, 65535 = ignore).
        self.dtype = np.dtype(np.uint8 if max(table.values()) <= IGNORE_LABEL else np.uint16)
        self._lut = np.full(max(table) + 1, -1, dtype=np.int32)
        for raw, new in table.items():
            self._lut[raw] = new

    def __call__(self, raw: np.ndarray, source: str) -> np.ndarray:
        """Returns the contiguous-id label (:attr:`dtype`, same shape) of raw label map ``raw``.

        Args:
            raw: integer array of raw values.
            source: names the raw label (a file) in the error message.

        Raises:
            UnexpectedLabelValueError: ``raw`` holds a value outside the table.
        """
        raw = np.asarray(raw)
        if raw.dtype.kind not in "iub":
            raise UnexpectedLabelValueError(f"{source}: label values of type {raw.dtype}; "
                                            f"expected integers {self.description}")
        if raw.size == 0:
            return raw.astype(self.dtype)
        in_range = (raw >= 0) & (raw < len(self._lut))
        out = self._lut[np.where(in_range, raw, 0)]
        bad = ~in_range | (out < 0)
        if bad.any():
            values = np.unique(raw[bad]).tolist()
            raise UnexpectedLabelValueError(
                f"{source}: unexpected raw label value(s) {listing(values)} "
                f"({int(bad.sum())} pixels); the format defines only {self.description}. "
                f"Is this the official, unmodified file?")
        return out.astype(self.dtype)


# ---------------------------------------------------------------------------------------------
# Reading and writing files
# ---------------------------------------------------------------------------------------------
def read_label_png(path: str, modes: Iterable[str] = ("L", "P")) -> np.ndarray:
    """Reads a label PNG (by default single-channel: grey or palette indices) as an integer
    array.

    Raises:
        UserError: the file is missing, unreadable or not in one of ``modes``.
    """
    try:
        with Image.open(path) as img:
            mode = img.mode
            if mode not in tuple(modes):
                raise UserError(f"{path}: image mode {mode}; expected a label PNG of mode "
                                f"{' or '.join(modes)} (the official format)")
            return np.array(img)
    except FileNotFoundError as e:
        raise UserError(f"raw label file not found: {path}") from e
    except (UnidentifiedImageError, OSError, ValueError, SyntaxError) as e:
        raise UserError(f"cannot read raw label file {path} ({e}); the download may be "
                        f"corrupt: extract it again") from e


def image_size(path: str) -> tuple[int, int]:
    """(height, width) of an image from its header (no decoding).

    Raises:
        UserError: the file is missing or not an image.
    """
    try:
        with Image.open(path) as img:
            width, height = img.size
    except FileNotFoundError as e:
        raise UserError(f"image file not found: {path}") from e
    except (UnidentifiedImageError, OSError, ValueError, SyntaxError) as e:
        raise UserError(f"cannot read image file {path} ({e}); extract the archive again") from e
    return height, width


def write_label_png(path: str, label: np.ndarray) -> None:
    """Writes a label map as a grey PNG, atomically (temp file + rename): 8-bit for a uint8
    map, 16-bit for a uint16 one (wide labels)."""
    buf = io.BytesIO()
    if label.dtype == np.uint16:
        Image.fromarray(np.ascontiguousarray(label)).save(buf, "PNG")  # mode I;16
    else:
        Image.fromarray(np.ascontiguousarray(label, dtype=np.uint8), mode="L").save(buf, "PNG")
    atomic_write_bytes(path, buf.getvalue())


def remove_stale_temp_files(folder: str) -> int:
    """Removes temporary files that an interrupted run left in ``folder``; returns how many.

    Atomic writes (:mod:`zsseg_bench.utils.file_io`) name them ``.<name>.<random>.tmp``.
    """
    if not os.path.isdir(folder):
        return 0
    stale = [n for n in os.listdir(folder) if n.startswith(".") and n.endswith(".tmp")]
    for name in stale:
        os.unlink(os.path.join(folder, name))
    return len(stale)


def read_split_list(path: str, hint: str = "") -> list[str]:
    """The image stems of a split list file, in file order, without duplicates.

    Accepts one entry a line, either a bare stem (``2007_000032``, the official
    ``ImageSets`` lists) or paths whose first column names the image
    (``/JPEGImages/2007_000032.jpg /SegmentationClassAug/2007_000032.png``, the DeepLab lists).

    Raises:
        UserError: the file is missing or lists nothing.
    """
    suffix = f"; {hint}" if hint else ""
    try:
        with open(path, encoding="utf-8") as f:
            lines = f.read().splitlines()
    except FileNotFoundError as e:
        raise UserError(f"split list not found: {path}{suffix}") from e
    stems = []
    for line in lines:
        fields = line.split()
        if fields:
            stems.append(os.path.splitext(os.path.basename(fields[0]))[0])
    if not stems:
        raise UserError(f"split list {path} lists no image{suffix}")
    return list(dict.fromkeys(stems))


def require_files(paths: Sequence[str], what: str, hint: str = "") -> None:
    """Raises :class:`UserError` naming the first missing ``paths`` (described as ``what``)."""
    missing = [p for p in paths if not os.path.exists(p)]
    if missing:
        suffix = f"; {hint}" if hint else ""
        raise UserError(f"{len(missing)} {what} missing: {listing(missing)}{suffix}")


def require_dir(path: str, what: str, hint: str = "") -> None:
    """Raises :class:`UserError` if folder ``path`` (described as ``what``) does not exist."""
    if not os.path.isdir(path):
        suffix = f"; {hint}" if hint else ""
        raise UserError(f"{what} not found: {path}{suffix}")


# ---------------------------------------------------------------------------------------------
# Conversion jobs
# ---------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class ConvertJob:
    """Conversion of one raw label into a prepared label PNG.

    Attributes:
        stem: the image name without extension.
        image: the image file; it must exist and have the label's size.
        output: the label PNG to write.
        read_raw: returns the raw label map (H x W integers); must be picklable (a module-level
            function or a ``functools.partial`` of one).
        source: names the raw label in error messages (a file, or a file and an entry).
        mapping: raw value -> contiguous id.
        image_output: if given, the image is written there too (re-encoded as JPEG, PIL's
            default quality, as Mask2Former's ADE20K-full converter), shrunk with its label to
            a short side of ``max_short_side`` when longer (:func:`short_side_size`); the
            registered dataset then reads this copy. ``None``: the official image is read as it
            is (every other dataset).
        max_short_side: see ``image_output``.
    """

    stem: str
    image: str
    output: str
    read_raw: Callable[[], np.ndarray]
    source: str
    mapping: RawLabelMapping
    image_output: str | None = None
    max_short_side: int | None = None


@dataclass(frozen=True)
class JobResult:
    """Outcome of one :class:`ConvertJob`: the image size and whether a file was written."""

    stem: str
    height: int
    width: int
    written: bool


def paired_folder_jobs(image_dir: str, raw_dir: str, label_dir: str, mapping: RawLabelMapping,
                       split_name: str, what: tuple[str, str], hint: str) -> list[ConvertJob]:
    """One :class:`ConvertJob` per raw label PNG of a split stored as two folders,
    ``<image_dir>/<stem>.jpg`` and ``<raw_dir>/<stem>.png`` (COCO-Stuff, ADE20K-150); every
    image needs a raw label and vice versa.

    Args:
        what: how the messages call the two folders (e.g. ``("COCO val2017 images",
            "COCO-Stuff val2017 stuff+thing maps")``).
        hint: what to read, at the end of an error message.

    Raises:
        UserError: a folder is missing or empty, or a file has no counterpart.
    """
    require_dir(image_dir, what[0], hint)
    require_dir(raw_dir, what[1], hint)
    images, raws = set(files_by_stem(image_dir, "jpg")), set(files_by_stem(raw_dir, "png"))
    for kind, have, lack, where in (("image(s)", images, raws, raw_dir),
                                    ("raw map(s)", raws, images, image_dir)):
        orphans = sorted(have - lack)
        if orphans:
            raise UserError(f"{len(orphans)} {kind} of {split_name} without a counterpart in "
                            f"{where} (e.g. {', '.join(orphans[:5])}): the download is "
                            f"incomplete; {hint}")
    if not raws:
        raise UserError(f"no raw map (*.png) in {raw_dir}; {hint}")
    jobs = []
    for stem in sorted(raws):
        raw = os.path.join(raw_dir, f"{stem}.png")
        jobs.append(ConvertJob(stem=stem, image=os.path.join(image_dir, f"{stem}.jpg"),
                               output=os.path.join(label_dir, f"{stem}.png"),
                               read_raw=functools.partial(read_label_png, raw), source=raw,
                               mapping=mapping))
    return jobs


def convert_one(job: ConvertJob, overwrite: bool = False) -> JobResult:
    """Converts one raw label (skipped when its output exists and ``overwrite`` is False).

    Raises:
        UserError: the image is missing, the raw label is missing or holds an unexpected value,
            or the label's size differs from the image's.
    """
    height, width = image_size(job.image)
    outputs = [job.output] if job.image_output is None else [job.output, job.image_output]
    if not overwrite and all(os.path.exists(p) for p in outputs):
        if job.image_output is not None:
            height, width = image_size(job.image_output)
        return JobResult(job.stem, height, width, written=False)
    raw = job.read_raw()
    if raw.shape != (height, width):
        raise UserError(f"{job.source}: label of size {raw.shape[1]}x{raw.shape[0]} "
                        f"(WxH) but its image {job.image} is {width}x{height}")
    label = job.mapping(raw, job.source)
    if job.image_output is not None:
        label = write_resized_image(job, label)
        height, width = label.shape
    write_label_png(job.output, label)
    return JobResult(job.stem, height, width, written=True)


def short_side_size(height: int, width: int, max_short_side: int) -> tuple[int, int]:
    """(height, width) after shrinking the short side to ``max_short_side`` if it is longer,
    the long side ``round(long / short * max_short_side)`` (Python's ``round``), as
    ``datasets/prepare_ade20k_full_sem_seg.py`` of facebookresearch/MaskFormer @ da3e60d;
    else unchanged."""
    if width >= height > max_short_side:
        return max_short_side, round(width / float(height) * max_short_side)
    if height >= width > max_short_side:
        return round(height / float(width) * max_short_side), max_short_side
    return height, width


def write_resized_image(job: ConvertJob, label: np.ndarray) -> np.ndarray:
    """Writes the image of ``job`` to ``job.image_output``, shrunk to ``job.max_short_side``
    (bilinear) when its short side is longer; returns ``label`` resized alike (nearest)."""
    import cv2

    try:
        with Image.open(job.image) as img:
            image = np.asarray(img)  # as the official script: no EXIF rotation, mode kept
    except (UnidentifiedImageError, OSError, ValueError, SyntaxError) as e:
        raise UserError(f"cannot read image file {job.image} ({e}); extract the archive "
                        f"again") from e
    height, width = label.shape
    if job.max_short_side is not None:
        new_height, new_width = short_side_size(height, width, job.max_short_side)
        if (new_height, new_width) != (height, width):
            # As the official converter: cv2.INTER_LINEAR for the image, INTER_NEAREST for
            # the label (cv2 sizes are (width, height)).
            image = cv2.resize(image, (new_width, new_height), interpolation=cv2.INTER_LINEAR)
            label = cv2.resize(label, (new_width, new_height), interpolation=cv2.INTER_NEAREST)
    buf = io.BytesIO()
    Image.fromarray(image).save(buf, "JPEG")
    atomic_write_bytes(job.image_output, buf.getvalue())
    return label


def run_jobs(jobs: Sequence[ConvertJob], workers: int, desc: str,
             overwrite: bool = False) -> list[JobResult]:
    """Runs ``jobs`` (in ``workers`` processes when > 1) with a progress bar on stderr.

    Returns:
        The results, sorted by stem. The first error stops the run (finished files are kept).
    """
    outputs = [p for j in jobs for p in (j.output, j.image_output) if p is not None]
    for folder in sorted({os.path.dirname(p) for p in outputs}):
        os.makedirs(folder, exist_ok=True)
        remove_stale_temp_files(folder)
    fn = functools.partial(convert_one, overwrite=overwrite)
    bar = functools.partial(tqdm, total=len(jobs), desc=desc, unit="file", file=sys.stderr,
                            disable=None)  # None: no bar when stderr is not a terminal
    if workers <= 1 or len(jobs) <= 1:
        results = [fn(job) for job in bar(jobs)]
    else:
        chunksize = max(1, min(64, len(jobs) // (workers * 8)))
        # forkserver, not fork: a process forked while another thread holds a lock (a
        # progress bar's, an imported library's) can hang forever in the child, and did once in
        # the suite (a 2-worker run that never returned).
        with multiprocessing.get_context("forkserver").Pool(workers) as pool:
            results = list(bar(pool.imap_unordered(fn, jobs, chunksize=chunksize)))
    return sorted(results, key=lambda r: r.stem)


# ---------------------------------------------------------------------------------------------
# Manifest and final verification
# ---------------------------------------------------------------------------------------------
def manifest_path(label_dir: str) -> str:
    """The manifest of the split whose labels are in ``label_dir``: ``<label_dir>.json``."""
    return os.path.normpath(label_dir) + ".json"


def read_manifest(label_dir: str) -> dict | None:
    """The manifest of ``label_dir``, or ``None`` if the split is not (completely) prepared.

    Raises:
        UserError: the manifest exists but is unreadable or of another format version.
    """
    path = manifest_path(label_dir)
    if not os.path.exists(path):
        return None
    try:
        with open(path, encoding="utf-8") as f:
            manifest = json.load(f)
        ok = manifest.get("version") == MANIFEST_VERSION and isinstance(manifest["images"], list)
    except (OSError, ValueError, KeyError, AttributeError) as e:
        raise UserError(f"cannot read dataset manifest {path} ({e}); delete it and run the "
                        f"dataset's prepare script again") from e
    if not ok:
        raise UserError(f"dataset manifest {path} is of another format version; delete it and "
                        f"run the dataset's prepare script again")
    return manifest


def finish_split(name: str, split: str, label_dir: str, official_count: int,
                 results: Sequence[JobResult]) -> dict:
    """Verifies a converted split, prints its counts, and writes its manifest (last).

    Every image of the split must have a label in ``label_dir`` now; a count that differs from
    the official one is reported as a warning (a custom or partial list may be intended).

    Returns:
        The manifest.

    Raises:
        UserError: a label of the split is missing.
    """
    stems = [r.stem for r in results]
    on_disk = set(files_by_stem(label_dir, "png"))
    missing = [os.path.join(label_dir, f"{s}.png") for s in stems if s not in on_disk]
    if missing:
        raise UserError(f"{name}: {len(missing)} label(s) missing after conversion: "
                        f"{listing(missing)}; run the script again")
    written = sum(r.written for r in results)
    print(f"{name} ({split}): {len(stems)} images, {len(stems)} labels "
          f"({written} written, {len(stems) - written} already done) in {label_dir}")
    extra = len(on_disk - set(stems))
    if extra:
        print(f"warning: {name}: {extra} label file(s) in {label_dir} belong to no image of the "
              f"split; they are not loaded", file=sys.stderr)
    if len(stems) != official_count:
        print(f"warning: {name}: {len(stems)} images, but the official {split} split has "
              f"{official_count}; check the download if you meant the full benchmark",
              file=sys.stderr)
    manifest = {
        "version": MANIFEST_VERSION,
        "dataset": name,
        "split": split,
        "num_images": len(stems),
        "official_num_images": official_count,
        "images": [[r.stem, r.height, r.width] for r in results],
    }
    atomic_write_json(manifest_path(label_dir), manifest)
    return manifest


def invalidate_manifest(label_dir: str) -> None:
    """Removes the manifest of ``label_dir`` (before converting: the split is incomplete)."""
    path = manifest_path(label_dir)
    if os.path.exists(path):
        os.unlink(path)


def convert_split(root: str, split: PreparedSplit, jobs: Sequence[ConvertJob], workers: int,
                  overwrite: bool = False, official_count: int | None = None) -> dict:
    """Converts the labels of one split and finishes it (verification, counts, manifest).

    The manifest is removed first and written last, so a split whose conversion was
    interrupted is never loaded; running again resumes it. ``official_count`` (default
    ``split.official_count``) is the image count of the official download the labels come from.

    Returns:
        The manifest.
    """
    label_dir = os.path.join(root, split.label_dir)
    os.makedirs(label_dir, exist_ok=True)
    invalidate_manifest(label_dir)
    results = run_jobs(jobs, workers, desc=split.name, overwrite=overwrite)
    count = split.official_count if official_count is None else official_count
    return finish_split(split.name, split.split, label_dir, count, results)


# ---------------------------------------------------------------------------------------------
# Command line
# ---------------------------------------------------------------------------------------------
def add_common_arguments(parser: argparse.ArgumentParser, splits: Sequence[str]) -> None:
    """Adds ``--root``, ``--splits``, ``--workers`` and ``--overwrite`` to a script's parser.

    Args:
        parser: the script's parser.
        splits: the splits the script can prepare (all by default).
    """
    parser.add_argument("--root", default=get_datasets_root(),
                        help=f"datasets root (default: ${DATASETS_ENV} or ./datasets; "
                             f"now {get_datasets_root()})")
    parser.add_argument("--splits", nargs="+", choices=list(splits), default=list(splits),
                        help=f"splits to prepare (default: all of {', '.join(splits)})")
    parser.add_argument("--workers", type=int, default=DEFAULT_WORKERS,
                        help=f"worker processes (default {DEFAULT_WORKERS}; 1 = no pool)")
    parser.add_argument("--overwrite", action="store_true",
                        help="convert every file again instead of keeping finished ones")


def run_main(main: Callable[[Sequence[str] | None], None],
             argv: Sequence[str] | None = None) -> int:
    """Runs a prepare script's ``main``; a :class:`UserError` becomes one line on stderr.

    Returns:
        The exit code: 0, or 2 after a :class:`UserError` (as the ``zsseg-bench`` CLI).
    """
    try:
        main(argv)
    except UserError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    return 0
