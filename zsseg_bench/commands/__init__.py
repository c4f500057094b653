"""The subcommands of ``zsseg-bench`` (the top layer: each may import any layer below).

One module per subcommand (``train``, ``eval``, ``speed``, ``sweep``, ``report``, ``demo``,
``prepare``), each exposing ``add_arguments(parser)`` and ``run(args) -> int``;
:mod:`zsseg_bench.cli` imports them lazily.
"""
