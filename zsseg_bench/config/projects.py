"""Methods as plug-ins: one description per method, found through one entry-point group.

Every method is an entry point ``<name> = <module>:<object>`` of the ``zsseg_bench.projects``
group. The object is the method's :class:`Method` (its name, display label, config function,
head, configs, speed knobs and published counterpart), or, for a plug-in that needs nothing
more, its config function ``add_<name>_config`` alone (then :func:`list_methods` describes it
with defaults: the entry point's name as its label, the ``configs/`` folder of its package).
The projects of this repository bind ``METHOD`` in ``projects/<name>/__init__.py``; setup.py
turns that into ``<name> = zsseg_bench.projects.<name>:METHOD``. Loading the entry point
imports the method, which registers its head. The core never imports a method by name: sweeps,
speed presets and scaling, reports, tests and docs ask :func:`list_methods` /
:func:`get_method`.
"""

from __future__ import annotations

import dataclasses
import sys
from collections.abc import Callable
from functools import cache
from importlib.metadata import EntryPoint, entry_points
from importlib.util import find_spec
from pathlib import Path
from typing import Any

from zsseg_bench.utils.errors import UserError

GROUP = "zsseg_bench.projects"
#: Where a method's config for a dataset lies under its configs folder.
DEFAULT_CONFIG_TEMPLATE = "{dataset}/{name}.yaml"
#: The dataset of the toy configs (the toy world).
TOY_DATASET = "synthetic"


@dataclasses.dataclass(frozen=True)
class SpeedKnobs:
    """What the speed harness may vary in a method beyond what every method shares.

    Attributes:
        proposals_key: the config key of its number of mask proposals (the scaling grid's
            ``proposals`` factor), or None if it has no such number to scale.
    """

    proposals_key: str | None = None


@dataclasses.dataclass(frozen=True)
class Method:
    """One method of the suite: what the rest of the suite needs to know about it.

    Attributes:
        name: the entry point's name (run ids, config file names, ``methods:`` of a sweep).
        add_config: adds its config keys to a config (in place; a no-op if they exist).
        label: the display name in tables and plots (default: ``name``).
        head: the name of its head in ``HEAD_REGISTRY`` (``MODEL.HEAD.NAME`` of its configs).
        configs: the folder of its own configs, ``<configs>/<dataset>/<name>.yaml``; None for a
            method of this repository, whose configs are the suite's (``configs/``, found by
            :func:`zsseg_bench.config.suite_configs.get_config_file`).
        config_template: the path of its config for a dataset under that folder.
        speed: its :class:`SpeedKnobs`.
        published: the method of its published efficiency row
            (:data:`zsseg_bench.evaluation.published.PUBLISHED_EFFICIENCY`) its speed is
            compared to, or None.
        reference: speed-ups are relative to this method when a sweep names no baseline (the
            two-stage pipeline the one-stage methods' speed claims are made against).
    """

    name: str
    add_config: Callable[[Any], Any]
    label: str = ""
    head: str | None = None
    configs: Path | None = None
    config_template: str = DEFAULT_CONFIG_TEMPLATE
    speed: SpeedKnobs = SpeedKnobs()
    published: str | None = None
    reference: bool = False

    def __post_init__(self) -> None:
        if not self.label:
            object.__setattr__(self, "label", self.name)
        if self.configs is not None:
            object.__setattr__(self, "configs", Path(self.configs))

    def config_file(self, dataset: str) -> Path | None:
        """Its config for ``dataset`` (e.g. ``synthetic``: the toy config; ``voc``: the
        reference VOC config), or None if it has none."""
        from zsseg_bench.config.suite_configs import configs_root

        root = self.configs if self.configs is not None else configs_root()
        path = root / self.config_template.format(dataset=dataset, name=self.name)
        return path if path.is_file() else None

    def own_config_file(self, dataset: str) -> Path | None:
        """Its config for ``dataset`` from its own configs folder (a plug-in's), else None."""
        return self.config_file(dataset) if self.configs is not None else None

    @property
    def toy_config(self) -> Path | None:
        """Its toy config (``<configs>/synthetic/<name>.yaml``), or None."""
        return self.config_file(TOY_DATASET)


def _package_configs(ep: EntryPoint) -> Path | None:
    """The ``configs/`` folder of the package of ``ep``'s module, if it has one."""
    try:
        spec = find_spec(ep.module)
    except (ImportError, ValueError):
        return None
    if spec is None or not spec.submodule_search_locations:
        return None  # a single-module method ships no configs
    for root in map(Path, spec.submodule_search_locations):
        if (root / "configs").is_dir():
            return root / "configs"
    return None


def _describe(ep: EntryPoint, obj: Any) -> Method:
    """The :class:`Method` an entry point names, or describes by its config function."""
    if callable(obj) and not isinstance(obj, Method):
        # The module's own description of that function, if it binds one (also what an install
        # made before the entry points named METHOD finds: re-run `pip install -e .`).
        described = getattr(sys.modules.get(ep.module), "METHOD", None)
        if isinstance(described, Method) and described.add_config is obj:
            obj = described
    if isinstance(obj, Method):
        if obj.name != ep.name:
            raise UserError(f"method project '{ep.name}' ({ep.value}) describes itself as "
                            f"{obj.name!r}: Method.name must be the entry point's name")
        return obj
    if callable(obj):  # a plain config function: a method described by defaults
        return Method(name=ep.name, add_config=obj, configs=_package_configs(ep))
    raise UserError(f"method project '{ep.name}' ({ep.value}) is neither a "
                    "zsseg_bench.config.projects.Method nor a config function")


@cache
def _methods() -> dict[str, Method]:
    found: dict[str, Method] = {}
    for ep in sorted(entry_points(group=GROUP), key=lambda e: e.name):
        if ep.name in found:
            continue  # the same distribution seen twice on sys.path
        try:
            obj = ep.load()
        except ImportError as e:
            raise UserError(f"method project '{ep.name}' ({ep.value}) failed to import: {e}; "
                            "reinstall the suite with `pip install -e .`") from e
        found[ep.name] = _describe(ep, obj)
    return found


def list_methods() -> tuple[Method, ...]:
    """Every installed method, by name (importing each registers its head)."""
    return tuple(_methods().values())


def find_method(name: str) -> Method | None:
    """The installed method called ``name``, or None."""
    return _methods().get(name)


def get_method(name: str) -> Method:
    """The installed method called ``name``.

    Raises:
        UserError: no installed method has that name.
    """
    method = find_method(name)
    if method is None:
        raise UserError(f"no method {name!r} is installed (methods: "
                        f"{', '.join(_methods()) or 'none'}; see projects/README.md)")
    return method


def load_projects() -> dict[str, Callable[[Any], Any]]:
    """Imports every installed method; returns ``name -> add_<method>_config``."""
    return {m.name: m.add_config for m in list_methods()}


def add_project_configs(cfg: Any) -> Any:
    """Adds the config keys of every installed method to ``cfg`` (in place) and returns it."""
    for method in list_methods():
        method.add_config(cfg)
    return cfg
