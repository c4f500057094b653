"""Method plug-ins, installed as ``zsseg_bench.projects.<name>`` (see setup.py)."""
