#!/usr/bin/env bash
# Builds the official ZegCLIP code (ZiqinZhou66/ZegCLIP @ 9ba4bb5, archived beside the repository
# in ../shared/vendor/) as a test oracle, in its own virtual environment under PREFIX:
#   PREFIX/venv            python with torch, mmcv 1.4.4 (pure Python: no ops), mmseg 0.24.0
#   PREFIX/ZegCLIP-9ba4bb5 the official sources (unpacked; never imported by the suite)
#   PREFIX/stubs           sitecustomize.py: a stub of mmcv's compiled ops (mmseg imports some
#                          at import time; ZegCLIP calls none)
# and prints the line to export: ZSSEG_ORACLE_ZEGCLIP_PYTHON=PREFIX/bin/python (a wrapper that
# puts the sources and the stub on sys.path).
# Usage: tests/oracle/setup_zegclip_env.sh PREFIX [ARCHIVE]
#   ARCHIVE default: $ZSSEG_VENDOR_DIR/ZegCLIP-9ba4bb5.tar.gz, ZSSEG_VENDOR_DIR default ../shared/vendor
#   (beside the repository, as .ci/run expects it)
# The official pins (mmcv-full 1.4.4, torch 1.10, timm 0.3.2) predate Python 3.11 / torch 2;
# what installs instead: tests/oracle/README.md.
set -euo pipefail
prefix="${1:?usage: setup_zegclip_env.sh PREFIX [ARCHIVE]}"
here="$(cd "$(dirname "$0")" && pwd)"
vendor="${ZSSEG_VENDOR_DIR:-$here/../../../shared/vendor}"
archive="${2:-$vendor/ZegCLIP-9ba4bb5.tar.gz}"
if [ ! -f "$archive" ]; then
  echo "setup_zegclip_env.sh: $archive not found: pass the ZegCLIP-9ba4bb5.tar.gz archive" >&2
  exit 2
fi
mkdir -p "$prefix" && prefix="$(cd "$prefix" && pwd)"
tar -xzf "$archive" -C "$prefix"
python3 -m venv "$prefix/venv"
pip="$prefix/venv/bin/pip"
# mmcv 1.4.4's setup.py imports pkg_resources (setuptools < 70; torch would pull a newer one).
"$pip" install -q torch torchvision "setuptools<70" wheel "numpy<2"
MMCV_WITH_OPS=0 "$pip" install -q --no-build-isolation "numpy<2" "opencv-python-headless<4.11" \
  mmcv==1.4.4
# timm 0.3.2 (the official pin) imports torch._six, gone in torch 2; ZegCLIP uses timm's
# initialisers and layers only, which 0.4.5 has unchanged.
"$pip" install -q --no-deps mmsegmentation==0.24.0 timm==0.4.5
"$pip" install -q yapf==0.40.1 matplotlib prettytable packaging scipy tqdm ftfy regex
mkdir -p "$prefix/stubs"
cat > "$prefix/stubs/sitecustomize.py" <<'PY'
"""mmseg 0.24 imports names from mmcv.ops (compiled; not built here) at import time: a stub
module whose every name is a class that raises when used. ZegCLIP calls no mmcv op."""
import sys
import types


class _MissingOp:
    def __init__(self, *args, **kwargs):
        raise RuntimeError("mmcv.ops is a stub in the ZegCLIP oracle environment")


def _getattr(name):
    if name.startswith("__"):
        raise AttributeError(name)
    return type(name, (_MissingOp,), {})


_ops = types.ModuleType("mmcv.ops")
_ops.__getattr__ = _getattr
sys.modules.setdefault("mmcv.ops", _ops)
PY
mkdir -p "$prefix/bin"
cat > "$prefix/bin/python" <<SH
#!/usr/bin/env bash
# The ZegCLIP oracle's python: the official sources and the mmcv.ops stub on the path.
export PYTHONPATH="$prefix/ZegCLIP-9ba4bb5:$prefix/stubs\${PYTHONPATH:+:\$PYTHONPATH}"
exec "$prefix/venv/bin/python" "\$@"
SH
chmod +x "$prefix/bin/python"
"$prefix/bin/python" -c "import mmseg, models  # noqa: the official package registers itself" \
  >/dev/null
echo "ZSSEG_ORACLE_ZEGCLIP_PYTHON=$prefix/bin/python"
