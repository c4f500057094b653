"""Without detectron2 the core imports and the integration stays unimported (runs in every
environment: detectron2 is blocked in the subprocess)."""

import subprocess
import sys

from tests.integrations.helpers import REPO

#: Imports every module of the core and of the projects with detectron2 made unimportable,
#: then reports whether anything imported zsseg_bench.integrations; then imports it.
SCRIPT = """
import importlib, pkgutil, sys
sys.modules["detectron2"] = None  # `import detectron2` now raises ImportError

def walk(package):
    for info in pkgutil.iter_modules(package.__path__, package.__name__ + "."):
        if info.name.startswith("zsseg_bench.integrations") or info.name.endswith("__main__"):
            continue
        module = importlib.import_module(info.name)
        if info.ispkg:
            walk(module)

import zsseg_bench, zsseg_bench.projects
walk(zsseg_bench)
print("imported", sum(m.startswith("zsseg_bench") for m in sys.modules))
print("integration", any(m.startswith("zsseg_bench.integrations") for m in sys.modules))
try:
    import zsseg_bench.integrations.detectron2
except ImportError as e:
    print("error", e)
"""


def test_core_never_imports_the_integration_and_it_explains_a_missing_detectron2():
    proc = subprocess.run([sys.executable, "-c", SCRIPT], cwd=REPO, capture_output=True,
                          text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-4000:]
    lines = dict(line.split(" ", 1) for line in proc.stdout.splitlines())
    assert int(lines["imported"]) > 80  # the whole core and the projects
    assert lines["integration"] == "False"
    assert "needs detectron2" in lines["error"] and "Using it from detectron2" in lines["error"]
