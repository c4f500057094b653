"""``zsseg-bench convert``: a checkpoint of a method's official code -> a suite checkpoint.

::

    zsseg-bench convert --from zegclip iter_20000.pth --output zegclip_voc.pth \\
        --config-file configs/voc/zegclip_vitb16_512x512_20k_inductive.yaml \\
        MODEL.CLIP.WEIGHTS /path/ViT-B-16.pt
    zsseg-bench eval --config-file <the same> --weights zegclip_voc.pth MODEL.CLIP.WEIGHTS ...

The config names the model the weights are for (the paper config the checkpoint was trained
with); the model is built from it on the CPU, the official tensors are renamed into it, and
every tensor is accounted for: an unknown or missing key, a shape mismatch, frozen CLIP weights
that differ from ``MODEL.CLIP.WEIGHTS`` or a file of another format is a one-line error. The
formats (``--from``) are registered by the methods (:mod:`zsseg_bench.engine.convert`).
"""

from __future__ import annotations

import argparse
import contextlib

from zsseg_bench.utils.errors import UserError

_SRC = "SRC [KEY VALUE ...]"


def _formats_help() -> str:
    from zsseg_bench.config.projects import load_projects
    from zsseg_bench.engine.convert import checkpoint_formats

    with contextlib.suppress(UserError):  # a broken project is reported when the command runs
        load_projects()  # the methods register their formats
    return "; ".join(f"{f.name}: {f.description} ({f.source})"
                     for f in checkpoint_formats().values()) or "none installed"


def _options(parser: argparse.ArgumentParser, formats_help: str = "") -> None:
    # Not required=True: options written after SRC reach run() in ``rest`` (checked there).
    parser.add_argument("--from", dest="format", metavar="FORMAT",
                        help=f"the official code that wrote SRC ({formats_help})")
    parser.add_argument("--output", metavar="DST",
                        help="the suite checkpoint to write (then: --weights DST)")
    parser.add_argument("--config-file", metavar="FILE",
                        help="the suite config of the model the weights are for, e.g. "
                             "configs/voc/<method>_vitb16_512x512_20k_inductive.yaml")
    parser.add_argument("--trust-source", action="store_true",
                        help="read SRC with full pickle (only for a file you trust; by default "
                             "only tensors and plain values are read)")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """``--from``, ``SRC``, ``--output``, ``--config-file``, ``--trust-source``, overrides."""
    _options(parser, _formats_help())
    parser.add_argument("rest", nargs=argparse.REMAINDER, metavar=_SRC,
                        help="the official checkpoint, then config overrides, e.g. "
                             "MODEL.CLIP.WEIGHTS /path/ViT-B-16.pt")


def _split_rest(args: argparse.Namespace) -> tuple[str, list[str]]:
    """SRC and the overrides; options written after SRC (argparse leaves them in ``rest``)
    are parsed here."""
    parser = argparse.ArgumentParser(prog="zsseg-bench convert", add_help=False)
    _options(parser)
    parser.add_argument("items", nargs="*")
    try:
        late = parser.parse_intermixed_args(list(args.rest))
    except SystemExit as e:  # argparse printed the problem
        raise UserError("could not parse the arguments after SRC") from e
    for name in ("format", "output", "config_file", "trust_source"):
        value = getattr(late, name)
        if value not in (None, False):
            setattr(args, name, value)
    missing = [flag for flag, name in (("--from", "format"), ("--output", "output"),
                                       ("--config-file", "config_file"))
               if not getattr(args, name)]
    if missing:
        raise UserError(f"missing {', '.join(missing)} (usage: zsseg-bench convert --from FORMAT "
                        "SRC --output DST --config-file FILE [KEY VALUE ...])")
    if not late.items:
        raise UserError("no SRC given: pass the official checkpoint to convert")
    return late.items[0], late.items[1:]


def run(args: argparse.Namespace) -> int:
    """Converts; returns the exit code."""
    from zsseg_bench.config.command_line import setup_cfg
    from zsseg_bench.engine.convert import convert_checkpoint

    source, opts = _split_rest(args)
    cfg = setup_cfg(args.config_file, opts)
    meta = convert_checkpoint(cfg, args.format, source, args.output,
                              trust_source=args.trust_source)
    origin = meta["converted_from"]
    print(f"{source} ({origin['format']}, sha256 {origin['sha256'][:12]}) -> {args.output}: "
          f"{meta['head']} weights for --weights")
    return 0
