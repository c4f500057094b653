#!/usr/bin/env bash
# Builds the virtual environment in which the official zsseg.baseline code runs as a test oracle
# (tests/oracle/test_zsseg_equal.py). Usage:
#   tests/oracle/setup_zsseg_env.sh PREFIX [VENDOR_DIR]
# PREFIX: the environment to create (its python is PREFIX/bin/python; tests find it through
# ZSSEG_ORACLE_ENV, default .oracle/zsseg). VENDOR_DIR: the archives of zsseg.baseline @ d77c3af
# and detectron2 @ 02b5c4e2 (default ../shared/vendor, as .ci/run).
# The official pins (torch 1.8, detectron2 0.6 wheels) predate Python 3.11: torch comes from the
# local wheels, detectron2 is built from its archived source against it (--no-build-isolation;
# pip caches the wheel, about 4 minutes the first time on 2 cores), the official code is unpacked
# into PREFIX/src (it is never installed: the test puts it and its third_party/CLIP on sys.path).
set -euo pipefail
PREFIX="${1:?usage: setup_zsseg_env.sh PREFIX [VENDOR_DIR]}"
ROOT="$(cd "$(dirname "$0")/../.." && pwd)"
VENDOR="${2:-$ROOT/../shared/vendor}"
ZSSEG_ARCHIVE="$VENDOR/zsseg.baseline-d77c3af.tar.gz"
D2_ARCHIVE="$VENDOR/detectron2-02b5c4e2.tar.gz"
for f in "$ZSSEG_ARCHIVE" "$D2_ARCHIVE"; do
  [ -f "$f" ] || { echo "setup_zsseg_env.sh: $f not found (give VENDOR_DIR)" >&2; exit 2; }
done
python3 -m venv "$PREFIX"
PIP=("$PREFIX/bin/python" -m pip install -q)
"${PIP[@]}" torch torchvision
# detectron2's own requirements first, then detectron2 against the torch above.
"${PIP[@]}" "setuptools<81" wheel fvcore "iopath<0.1.10" pycocotools scipy shapely ftfy regex timm \
  opencv-python-headless
"${PIP[@]}" --no-build-isolation "$D2_ARCHIVE"
mkdir -p "$PREFIX/src"
tar -xzf "$ZSSEG_ARCHIVE" -C "$PREFIX/src"
# mask_former/utils/events.py imports wandb at import time; the oracle never logs.
SITE="$("$PREFIX/bin/python" -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')"
mkdir -p "$SITE/wandb"
printf '"""Stub: zsseg.baseline imports wandb at import time; the oracle logs nothing."""\n' \
  > "$SITE/wandb/__init__.py"
"$PREFIX/bin/python" -c "import detectron2, torch; print('zsseg oracle env:', torch.__version__, detectron2.__version__)"
