#!/usr/bin/env bash
# Builds the official SAN code (MendelXu/SAN @ e19262d, archived beside the repository in
# ../shared/vendor/) as a test oracle, in its own virtual environment under PREFIX:
#   PREFIX/venv          python with torch, detectron2 (built from the archived source),
#                        open_clip_torch 2.16.0 and timm 0.6.13 (the versions SAN was written for)
#   PREFIX/SAN-e19262d   the official sources (unpacked; never imported by the suite)
#   PREFIX/stubs/wandb   a stub: san/__init__.py imports wandb (san/utils/events.py); the model
#                        never calls it
#   PREFIX/bin/python    a wrapper that puts the sources and the stub on sys.path
# and prints the line to export: ZSSEG_ORACLE_SAN_PYTHON=PREFIX/bin/python
# (tests/oracle/test_san_equal.py).
# Usage: tests/oracle/setup_san_env.sh PREFIX [VENDOR_DIR]
#   VENDOR_DIR (default ../shared/vendor beside the repository, as .ci/run expects it) holds
#   SAN-e19262d.tar.gz and detectron2-02b5c4e2.tar.gz.
# The official install.sh pins torch 1.12.1+cu113, mmcv 1.3.14, numpy 1.22.4 (Python <= 3.10);
# what installs instead on Python 3.11: torch 2.x from the package index, detectron2 0.6 from its
# archived source against it (--no-build-isolation; pip caches the wheel, about 4 minutes the
# first time on 2 cores), opencv-python-headless (detectron2's PointRend, imported by SAN's
# criterion, imports cv2). Nothing is downloaded from the Hugging Face hub: the oracle script
# builds CLIP with random weights.
set -euo pipefail
prefix="${1:?usage: setup_san_env.sh PREFIX [VENDOR_DIR]}"
here="$(cd "$(dirname "$0")" && pwd)"
vendor="${2:-$here/../../../shared/vendor}"
san_archive="$vendor/SAN-e19262d.tar.gz"
d2_archive="$vendor/detectron2-02b5c4e2.tar.gz"
for f in "$san_archive" "$d2_archive"; do
  [ -f "$f" ] || { echo "setup_san_env.sh: $f not found (pass VENDOR_DIR)" >&2; exit 2; }
done
mkdir -p "$prefix" && prefix="$(cd "$prefix" && pwd)"
tar -xzf "$san_archive" -C "$prefix"
python3 -m venv "$prefix/venv"
pip=("$prefix/venv/bin/python" -m pip install -q)
"${pip[@]}" torch torchvision "setuptools<81" wheel
"${pip[@]}" fvcore "iopath<0.1.10" pycocotools scipy ftfy regex opencv-python-headless
"${pip[@]}" --no-build-isolation "$d2_archive"
"${pip[@]}" open_clip_torch==2.16.0 timm==0.6.13
mkdir -p "$prefix/stubs/wandb"
printf '"""Stub: SAN imports wandb at import time (san/utils/events.py); the oracle logs nothing."""\n\n\ndef init(*args, **kwargs):\n    pass\n\n\ndef log(*args, **kwargs):\n    pass\n' \
  > "$prefix/stubs/wandb/__init__.py"
mkdir -p "$prefix/bin"
cat > "$prefix/bin/python" <<SH
#!/usr/bin/env bash
# The SAN oracle's python: the official sources and the wandb stub on the path.
export PYTHONPATH="$prefix/SAN-e19262d:$prefix/stubs\${PYTHONPATH:+:\$PYTHONPATH}"
exec "$prefix/venv/bin/python" "\$@"
SH
chmod +x "$prefix/bin/python"
"$prefix/bin/python" -W ignore -c "import san, detectron2, open_clip, timm; print('SAN oracle:', timm.__version__)" >&2
echo "ZSSEG_ORACLE_SAN_PYTHON=$prefix/bin/python"
