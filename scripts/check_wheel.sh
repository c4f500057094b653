#!/usr/bin/env bash
# A non-editable install works: builds a wheel of this checkout, installs it without its
# dependencies into a fresh virtual environment that reuses the current environment's packages
# (a .pth file naming its site-packages: torch and the rest are not installed again), then, from
# a directory outside the checkout, resolves the speed presets and the scaling grid's methods
# from the installed package data and runs `zsseg-bench demo --quick` (toy configs, the toy
# CLIP, the sweeps, the report).
#   scripts/check_wheel.sh [WORKDIR]      # default: a new temporary directory, removed on success
# Run it with the suite's environment active (python = the environment with zsseg-bench's
# dependencies; `.ci/run` does).
set -euo pipefail
repo="$(cd "$(dirname "$0")/.." && pwd)"
work="${1:-}"
[ -n "$work" ] || { work="$(mktemp -d)"; remove=1; }
python="${PYTHON:-python}"
rm -rf "$work/wheel" "$work/venv" "$work/run" && mkdir -p "$work/run"

# --no-build-isolation builds with this environment's setuptools: before 70.1 it needs `wheel`
"$python" -c "import importlib.util, setuptools
v = tuple(int(x) for x in setuptools.__version__.split('.')[:2])
raise SystemExit(v < (70, 1) and importlib.util.find_spec('wheel') is None)" \
  || "$python" -m pip install -q wheel
# the wheel (setup.py installs configs/ as zsseg_bench/configs; a stale build/ could add files)
(cd "$repo" && rm -rf build && "$python" -m pip wheel --no-deps --no-build-isolation -q \
  -w "$work/wheel" . && rm -rf build)
# a fresh environment on the same interpreter, seeing the current environment's packages
"$("$python" -c 'import sys; print(sys._base_executable)')" -m venv --without-pip "$work/venv"
# every site-packages folder the current interpreter sees (its own, and those its .pth files
# add), named in a .pth file of the new one (whose own site-packages comes first)
"$python" -c "import sys; print('\n'.join(p for p in sys.path
                                          if p.endswith(('site-packages', 'dist-packages'))))" \
  > "$("$work/venv/bin/python" -c "import sysconfig; print(sysconfig.get_paths()['purelib'])")/zz_reuse_dependencies.pth"
"$python" -m pip --python "$work/venv/bin/python" install --no-deps -q "$work"/wheel/*.whl

cd "$work/run"  # outside the checkout: nothing may be found relative to it
export ZSSEG_DATASETS="$work/run/datasets"
unset PYTHONPATH
"$work/venv/bin/python" - "$work/venv" <<'PY'
import sys
from pathlib import Path

import zsseg_bench
from zsseg_bench.commands.speed_scaling import default_methods
from zsseg_bench.config.projects import list_methods
from zsseg_bench.config.suite_configs import configs_root
from zsseg_bench.speed.presets import PRESETS
from zsseg_bench.sweep.spec import load_sweep_spec

venv = Path(sys.argv[1]).resolve()
for path in (Path(zsseg_bench.__file__), configs_root()):
    assert venv in path.resolve().parents, f"{path} is not in the installed package ({venv})"
methods = list_methods()
assert methods and all(m.toy_config for m in methods), [(m.name, m.toy_config) for m in methods]
for name, spec in PRESETS.items():
    print(f"preset {name}: {len(load_sweep_spec(spec).expand())} runs")
print(f"scaling grid methods: {', '.join(default_methods())}")
PY
"$work/venv/bin/zsseg-bench" demo --quick --output-dir "$work/run/demo"
test -s "$work/run/demo/table.md"
echo "check_wheel: the installed wheel ran the presets, the scaling grid's methods and the demo"
[ -z "${remove:-}" ] || rm -rf "$work"
