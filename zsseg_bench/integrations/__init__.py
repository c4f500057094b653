"""Optional integrations with other code bases (imported only by their users; the core, the
projects and the ``zsseg-bench`` commands never import them).

- :mod:`.detectron2`: the suite's meta-architecture, configs, mapper and evaluators inside
  detectron2's own trainer (``scripts/train_net.py``).
"""
