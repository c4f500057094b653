"""Sweep specs: a YAML grid of methods x datasets x settings x seeds x config overrides.

A spec (see ``configs/sweeps/*.yaml`` for commented examples)::

    name: toy_comparison
    description: "..."                              # printed under the demo's table
    config_template: "../{dataset}/{method}.yaml"   # relative to the spec file
    methods: [zegclip, two_stage]                   # or "*" (every installed method with
                                                    # a config), or {name: {config,
                                                    # overrides, label, speed_args}} (config
                                                    # may use {dataset} and {method})
    labels: {}                                      # {name: label}; default: the method's
                                                    # own label (Method.label), else the name
    datasets: [synthetic]                           # or {name: {overrides}}
    settings: [inductive]                           # or {name: {overrides}}
    seeds: [0]
    overrides: {SOLVER.MAX_ITER: 300}               # every run (train and speed)
    variants: {}                                    # {name: {KEY: VALUE}}: one axis of the grid
    grid: {}                                        # {KEY: [v1, v2]}: one axis per key
    train: {enabled: true, args: []}                # false: speed-only runs (presets)
    speed: {enabled: true, overrides: {}, args: []} # speed-only overrides and options
    baseline: two_stage                             # the method speed-ups are relative to
    launcher: {local: {jobs: 1, first: [two_stage]}, slurm: {timeout_min: 240}}  # first: start
                                                    # these methods' runs first (the longest)

:func:`load_sweep_spec` validates a spec; :meth:`SweepSpec.expand` turns it into
:class:`Cell` objects, one per run, each with a stable id derived from what defines it (its
config as it differs from the defaults, and the data a run that trains uses).
"""

from __future__ import annotations

import dataclasses
import difflib
import hashlib
import itertools
import json
import os
import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

import yaml

from zsseg_bench.config.allowed import allowed_values
from zsseg_bench.utils.errors import UserError
from zsseg_bench.utils.sweep_layout import STAGES

#: A setting named like a choice of this key (``inductive``, ...) sets it.
SETTING_KEY = "ZERO_SHOT.SETTING"
DEFAULT_CONFIG_TEMPLATE = "../{dataset}/{method}.yaml"
DEFAULT_VARIANT = "default"

#: The command of each stage. ``{args}`` and ``{opts}`` (whole elements) expand to the stage's
#: extra options (``train.args``/``speed.args``) and its ``KEY VALUE ...`` overrides. Training
#: passes ``--resume``: a re-launched, interrupted run continues from its last checkpoint.
DEFAULT_COMMANDS: dict[str, list[str]] = {
    "train": ["{python}", "-m", "zsseg_bench", "train", "--resume", "--config-file",
              "{config_file}", "--output-dir", "{output_dir}", "{args}", "{opts}"],
    "speed": ["{python}", "-m", "zsseg_bench", "speed", "--config-file", "{config_file}",
              "--output-dir", "{output_dir}", "{args}", "{opts}"],
}

_TOP_KEYS = (
    "name", "description", "config_template", "methods", "datasets", "settings", "seeds",
    "overrides", "variants", "grid", "train", "speed", "baseline", "labels", "commands",
    "launcher",
    "resolve_configs",
)
_METHOD_KEYS = ("config", "overrides", "label", "speed_args")
_DATASET_KEYS = ("overrides", "label")
_SETTING_KEYS = ("overrides",)
_SPEED_KEYS = ("enabled", "overrides", "args")
_TRAIN_KEYS = ("enabled", "args")
#: The launchers a spec may configure (``launcher.<name>``; their classes:
#: :mod:`zsseg_bench.sweep.launchers`).
LAUNCHER_NAMES = ("local", "slurm")
_LAUNCHER_KEYS = ("default", *LAUNCHER_NAMES)
_LOCAL_KEYS = ("jobs", "first")
_ID_SAFE = re.compile(r"[^A-Za-z0-9_.=+-]+")
_MAX_VARIANT_SLUG = 40
_HASH_CHARS = 10


class SweepSpecError(UserError):
    """A sweep spec that cannot be used; the message names the file and the key."""


@dataclasses.dataclass(frozen=True)
class Cell:
    """One run of a sweep: a method on a dataset in a setting with a seed and a variant.

    Attributes:
        sweep: name of the sweep.
        run_id: stable id (``<method>-<dataset>-<setting>-s<seed>[-<variant>]-<hash>``), the
            name of the run directory; the hash covers what defines the run (per stage, its
            config as it differs from the defaults; for a run that trains, the fingerprints of
            its datasets; see :mod:`zsseg_bench.sweep.resolve`).
        method, dataset, setting, variant: the labels of the cell (spec names).
        method_label: the display name of the method in tables and plots.
        seed: the value of ``SEED``.
        config_file: absolute path of the config file.
        stages: the stages to run, in order (a subset of ``layout.STAGES``).
        opts: stage -> flat ``[KEY, VALUE, ...]`` override list given to that stage's command.
        commands: stage -> command template (see :data:`DEFAULT_COMMANDS`).
        baseline: the method speed-ups are computed against, or None.
        args: stage -> extra command-line options (``{args}`` in the template).
    """

    sweep: str
    run_id: str
    method: str
    method_label: str
    dataset: str
    setting: str
    seed: int
    variant: str
    config_file: str
    stages: tuple[str, ...]
    opts: dict[str, list[str]]
    commands: dict[str, list[str]]
    baseline: str | None = None
    args: dict[str, list[str]] = dataclasses.field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        """A JSON-serialisable dict (what ``cell.json`` holds)."""
        d = dataclasses.asdict(self)
        d["stages"] = list(self.stages)
        return d

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> Cell:
        """The inverse of :meth:`to_dict`; raises ``KeyError``/``TypeError`` on bad input."""
        fields = {f.name for f in dataclasses.fields(cls)}
        missing = fields - set(d) - {"baseline", "args"}
        if missing:
            raise KeyError(f"missing fields {sorted(missing)}")
        kwargs = {k: d[k] for k in fields if k in d}
        kwargs["stages"] = tuple(kwargs["stages"])
        kwargs["seed"] = int(kwargs["seed"])
        return cls(**kwargs)


def format_opt_value(value: Any) -> str:
    """Formats a YAML value as a command-line override value (parsed back by ``literal_eval``)."""
    if isinstance(value, str):
        return value
    if isinstance(value, tuple):
        value = list(value)
    return repr(value)


@dataclasses.dataclass
class _MethodEntry:
    name: str
    config: str | None
    overrides: dict[str, Any]
    label: str
    speed_args: list[str] = dataclasses.field(default_factory=list)


@dataclasses.dataclass(frozen=True)
class LauncherSpec:
    """The spec's ``launcher`` section, validated.

    Attributes:
        default: the launcher used when the command names none (``local`` or ``slurm``).
        jobs: the local launcher's runs side by side (``launcher.local.jobs``).
        first: methods whose runs the local launcher starts first (``launcher.local.first``):
            with runs side by side, the longest ones started first let the shorter ones fill
            the other places beside them instead of running last, alone.
        slurm: submitit executor settings (``launcher.slurm``), checked by submitit when the
            jobs are submitted.
    """

    default: str = "local"
    jobs: int = 1
    first: tuple[str, ...] = ()
    slurm: dict[str, Any] = dataclasses.field(default_factory=dict)


@dataclasses.dataclass
class SweepSpec:
    """A validated sweep spec (see the module docstring for the YAML format).

    Build it with :func:`load_sweep_spec`; turn it into runs with :meth:`expand`.
    """

    path: Path
    name: str
    description: str
    config_template: str
    methods: list[_MethodEntry]
    datasets: dict[str, dict[str, Any]]
    settings: dict[str, dict[str, Any]]
    seeds: list[int]
    overrides: dict[str, Any]
    variants: dict[str, dict[str, Any]]
    train_enabled: bool
    speed_enabled: bool
    speed_overrides: dict[str, Any]
    args: dict[str, list[str]]
    baseline: str | None
    commands: dict[str, list[str]]
    launcher: LauncherSpec
    resolve_configs: bool
    text: str

    def config_file(self, method: _MethodEntry, dataset: str) -> Path:
        """The config file of ``method`` on ``dataset`` (absolute, must exist)."""
        rel = (method.config or self.config_template).format(method=method.name, dataset=dataset)
        path = (self.path.parent / rel).resolve()
        if not path.is_file():
            raise SweepSpecError(
                f"{self.path}: config file {path} of method {method.name!r} on dataset "
                f"{dataset!r} does not exist (set methods.{method.name}.config or "
                "config_template, relative to the spec file)")
        return path

    def stages(self) -> tuple[str, ...]:
        """The stages of every run of this sweep (``train`` and/or ``speed``)."""
        enabled = {"train": self.train_enabled, "speed": self.speed_enabled}
        return tuple(s for s in STAGES if enabled[s])

    def expand(
        self,
        extra_overrides: Sequence[str] = (),
        resolver: Callable[[str, list[str]], str] | None = None,
        extra_args: Mapping[str, Sequence[str]] | None = None,
        data: Callable[[str, list[str]], dict[str, str]] | None = None,
    ) -> list[Cell]:
        """All runs of the sweep, in grid order (method, dataset, setting, variant, seed).

        Args:
            extra_overrides: ``KEY VALUE ...`` applied to every run after the spec's overrides
                (e.g. from the command line).
            resolver: ``(config_file, opts) -> resolved config text`` used for run ids;
                default: :func:`zsseg_bench.sweep.resolve.resolve_config_text` when
                ``resolve_configs`` is true, else the raw config text plus the overrides.
            extra_args: stage -> command-line options appended to that stage's (e.g. the
                speed options a preset forwards); part of the run ids.
            data: ``(config_file, train opts) -> {dataset: fingerprint}`` of the data a run
                that trains uses, part of its id; default:
                :func:`zsseg_bench.sweep.resolve.data_fingerprints` when ``resolve_configs``
                is true (a spec whose commands are not zsseg-bench's has no data identity).

        Returns:
            The cells; their ``run_id`` are unique and stable across processes and machines
            (for the same data).
        """
        if len(extra_overrides) % 2:
            raise SweepSpecError(f"overrides must be KEY VALUE pairs, got {list(extra_overrides)}")
        if resolver is None:
            from zsseg_bench.sweep.resolve import raw_config_text, resolve_config_text

            resolver = resolve_config_text if self.resolve_configs else raw_config_text
        if data is None and self.resolve_configs:
            from zsseg_bench.sweep.resolve import data_fingerprints

            cache: dict[str, dict[str, Any]] = {}

            def data(config_file: str, opts: list[str]) -> dict[str, str]:
                return data_fingerprints(config_file, opts, cache)

        stages = self.stages()
        cells: list[Cell] = []
        for method, dataset, setting, variant, seed in itertools.product(
                self.methods, self.datasets, self.settings, self.variants, self.seeds):
            config_file = str(self.config_file(method, dataset))
            train_opts = _flatten(self.overrides) + _flatten(self.datasets[dataset]["overrides"])
            train_opts += _flatten(method.overrides) + _flatten(self.settings[setting]["overrides"])
            train_opts += _flatten(self.variants[variant]) + list(extra_overrides)
            train_opts += ["SEED", str(seed)]
            opts = {"train": train_opts, "speed": train_opts + _flatten(self.speed_overrides)}
            opts = {s: opts[s] for s in stages}
            commands = {s: list(self.commands[s]) for s in stages}
            args = {s: list(self.args.get(s, [])) + list((extra_args or {}).get(s, []))
                    for s in stages}
            if "speed" in args:
                args["speed"] += method.speed_args
            resolved = {}
            for stage in stages:
                try:
                    resolved[stage] = resolver(config_file, opts[stage])
                except UserError as e:
                    raise SweepSpecError(
                        f"{self.path}: run {method.name}/{dataset}/{setting}/{variant}/seed "
                        f"{seed} ({stage}): {e}") from e
            identity = {
                "method": method.name, "dataset": dataset, "setting": setting,
                "variant": variant, "seed": seed, "stages": list(stages),
                "commands": commands, "args": args, "resolved": resolved,
            }
            if "train" in stages and data is not None:
                try:
                    identity["data"] = data(config_file, opts["train"])
                except UserError as e:
                    raise SweepSpecError(
                        f"{self.path}: run {method.name}/{dataset}/{setting}/{variant}/seed "
                        f"{seed}: {e}") from e
            cells.append(Cell(
                sweep=self.name,
                run_id=make_run_id(method.name, dataset, setting, seed, variant, identity),
                method=method.name, method_label=method.label, dataset=dataset,
                setting=setting, seed=seed, variant=variant, config_file=config_file,
                stages=stages, opts=opts, commands=commands, baseline=self.baseline,
                args=args,
            ))
        seen: dict[str, Cell] = {}
        for cell in cells:
            if cell.run_id in seen:
                raise SweepSpecError(
                    f"{self.path}: two runs resolve to the same config ({cell.run_id}); "
                    "remove the duplicate method/variant/override")
            seen[cell.run_id] = cell
        return cells


def make_run_id(method: str, dataset: str, setting: str, seed: int, variant: str,
                identity: Mapping[str, Any]) -> str:
    """A readable, file-name-safe id whose suffix hashes ``identity`` (canonical JSON, SHA-1)."""
    digest = hashlib.sha1(
        json.dumps(identity, sort_keys=True, separators=(",", ":")).encode("utf-8")).hexdigest()
    parts = [method, dataset, setting, f"s{seed}"]
    if variant != DEFAULT_VARIANT:
        parts.append(_ID_SAFE.sub("_", variant)[:_MAX_VARIANT_SLUG])
    parts.append(digest[:_HASH_CHARS])
    return "-".join(_ID_SAFE.sub("_", p) for p in parts)


def _flatten(overrides: Mapping[str, Any]) -> list[str]:
    out: list[str] = []
    for key, value in overrides.items():
        out += [str(key), format_opt_value(value)]
    return out


# ------------------------------------------------------------------------------------------
# Loading and validation
# ------------------------------------------------------------------------------------------
def load_sweep_spec(path: str | os.PathLike) -> SweepSpec:
    """Reads and validates a sweep spec.

    Args:
        path: the YAML file.

    Returns:
        The spec; relative paths in it are relative to the file's directory.

    Raises:
        SweepSpecError: the file is missing, not YAML, or a key is unknown or of the wrong type.
    """
    path = Path(path).resolve()
    if not path.is_file():
        raise SweepSpecError(f"sweep spec not found: {path} (see configs/sweeps/ for examples)")
    text = path.read_text(encoding="utf-8")
    try:
        raw = yaml.safe_load(text)
    except yaml.YAMLError as e:
        raise SweepSpecError(f"{path}: not valid YAML: {e}") from e
    if not isinstance(raw, dict):
        raise SweepSpecError(f"{path}: a sweep spec must be a mapping of keys "
                             f"({', '.join(_TOP_KEYS)})")
    ctx = _Ctx(path)
    ctx.check_keys(raw, _TOP_KEYS, "")
    name = str(raw.get("name") or path.stem)
    description = raw.get("description") or ""
    if not isinstance(description, str):
        raise SweepSpecError(f"{path}: description must be text, got {description!r}")
    template = str(raw.get("config_template", DEFAULT_CONFIG_TEMPLATE))
    labels = ctx.mapping(raw.get("labels", {}), "labels")
    methods = _parse_methods(ctx, raw.get("methods"), raw.get("datasets"), template, labels)
    datasets = _parse_named(ctx, raw.get("datasets"), "datasets", _DATASET_KEYS)
    settings = _parse_settings(ctx, raw.get("settings", ["inductive"]))
    seeds = raw.get("seeds", [0])
    if (not isinstance(seeds, list) or not seeds
            or not all(isinstance(s, int) and not isinstance(s, bool) for s in seeds)):
        raise SweepSpecError(f"{path}: seeds must be a non-empty list of integers, got {seeds!r}")
    if len(set(seeds)) != len(seeds):
        raise SweepSpecError(f"{path}: seeds has duplicates: {seeds}")
    overrides = ctx.overrides(raw.get("overrides", {}), "overrides")
    variants = _parse_variants(ctx, raw.get("variants", {}), raw.get("grid", {}))
    speed = raw.get("speed", {})
    if isinstance(speed, bool):
        speed = {"enabled": speed}
    speed = ctx.mapping(speed, "speed")
    ctx.check_keys(speed, _SPEED_KEYS, "speed.")
    speed_enabled = speed.get("enabled", True)
    if not isinstance(speed_enabled, bool):
        raise SweepSpecError(f"{path}: speed.enabled must be true or false")
    speed_overrides = ctx.overrides(speed.get("overrides", {}), "speed.overrides")
    train = ctx.mapping(raw.get("train", {}), "train")
    ctx.check_keys(train, _TRAIN_KEYS, "train.")
    train_enabled = train.get("enabled", True)
    if not isinstance(train_enabled, bool):
        raise SweepSpecError(f"{path}: train.enabled must be true or false")
    if not (train_enabled or speed_enabled):
        raise SweepSpecError(f"{path}: train.enabled and speed.enabled are both false: "
                             "nothing to run")
    args = {"train": ctx.args(train.get("args", []), "train.args"),
            "speed": ctx.args(speed.get("args", []), "speed.args")}
    baseline = raw.get("baseline")
    if baseline is not None and baseline not in {m.name for m in methods}:
        raise SweepSpecError(f"{path}: baseline {baseline!r} is not one of the methods "
                             f"({', '.join(m.name for m in methods)})")
    commands = _parse_commands(ctx, raw.get("commands", {}))
    launcher = _parse_launcher(ctx, raw.get("launcher", {}), [m.name for m in methods])
    resolve_configs = raw.get("resolve_configs", True)
    if not isinstance(resolve_configs, bool):
        raise SweepSpecError(f"{path}: resolve_configs must be true or false")
    return SweepSpec(
        path=path, name=name, description=description.strip(), config_template=template,
        methods=methods, datasets=datasets,
        settings=settings, seeds=list(seeds), overrides=overrides, variants=variants,
        train_enabled=train_enabled, speed_enabled=speed_enabled,
        speed_overrides=speed_overrides, args=args,
        baseline=baseline,
        commands=commands, launcher=launcher, resolve_configs=resolve_configs, text=text,
    )


def _parse_launcher(ctx: _Ctx, value: Any, methods: Sequence[str]) -> LauncherSpec:
    raw = ctx.mapping(value, "launcher")
    ctx.check_keys(raw, _LAUNCHER_KEYS, "launcher.")
    default = raw.get("default", "local")
    if default not in LAUNCHER_NAMES:
        raise ctx.error(f"launcher.default must be one of {', '.join(LAUNCHER_NAMES)}, "
                        f"got {default!r}")
    local = ctx.mapping(raw.get("local") or {}, "launcher.local")
    ctx.check_keys(local, _LOCAL_KEYS, "launcher.local.")
    jobs = local.get("jobs", 1)
    if not isinstance(jobs, int) or isinstance(jobs, bool) or jobs < 1:
        raise ctx.error(f"launcher.local.jobs must be an integer >= 1, got {jobs!r}")
    first = local.get("first") or []
    if not isinstance(first, list) or any(m not in methods for m in first):
        raise ctx.error(f"launcher.local.first must list methods of the spec "
                        f"({', '.join(methods)}), got {first!r}")
    slurm = ctx.mapping(raw.get("slurm") or {}, "launcher.slurm")
    return LauncherSpec(default=default, jobs=jobs, first=tuple(first), slurm=slurm)


def closest_key(key: str, allowed: Sequence[str]) -> str | None:
    """The allowed key a misspelt ``key`` most likely means: one that differs only in case or
    by a plural ``s`` first (``seed`` -> ``seeds``, not ``speed``), else the closest spelling."""
    for candidate in allowed:
        if candidate.lower() in (key.lower(), key.lower() + "s", key.lower().rstrip("s")):
            return candidate
    close = difflib.get_close_matches(key, list(allowed), n=1)
    return close[0] if close else None


class _Ctx:
    """Validation helpers that name the spec file and the key in every error."""

    def __init__(self, path: Path):
        self.path = path

    def error(self, msg: str) -> SweepSpecError:
        return SweepSpecError(f"{self.path}: {msg}")

    def check_keys(self, d: Mapping[str, Any], allowed: Iterable[str], prefix: str) -> None:
        allowed = list(allowed)
        for key in d:
            if key not in allowed:
                close = closest_key(str(key), allowed)
                hint = f"; did you mean {prefix}{close}?" if close else ""
                raise self.error(f"unknown key {prefix}{key}{hint} "
                                 f"(allowed: {', '.join(allowed)})")

    def mapping(self, value: Any, key: str) -> dict[str, Any]:
        if value is None:
            return {}
        if not isinstance(value, dict):
            raise self.error(f"{key} must be a mapping, got {type(value).__name__}")
        return dict(value)

    def args(self, value: Any, key: str) -> list[str]:
        """Extra command-line options: a list of strings (numbers are converted)."""
        if not isinstance(value, list) or not all(
                isinstance(v, (str, int, float)) and not isinstance(v, bool) for v in value):
            raise self.error(f"{key} must be a list of command-line arguments, got {value!r}")
        return [str(v) for v in value]

    def overrides(self, value: Any, key: str) -> dict[str, Any]:
        """Overrides as a mapping ``{KEY: VALUE}`` or a flat list ``[KEY, VALUE, ...]``."""
        if isinstance(value, list):
            if len(value) % 2:
                raise self.error(f"{key} as a list must be KEY VALUE pairs, got {value}")
            value = dict(zip(value[0::2], value[1::2]))
        value = self.mapping(value, key)
        for k in value:
            if not isinstance(k, str) or not k or k != k.strip():
                raise self.error(f"{key}: bad config key {k!r}")
        return value


def _parse_named(ctx: _Ctx, value: Any, key: str, allowed: tuple[str, ...]
                 ) -> dict[str, dict[str, Any]]:
    if value is None:
        raise ctx.error(f"missing key {key}")
    if isinstance(value, str):
        value = [value]
    if isinstance(value, list):
        value = {str(v): None for v in value}
    value = ctx.mapping(value, key)
    if not value:
        raise ctx.error(f"{key} is empty")
    out = {}
    for name, entry in value.items():
        entry = ctx.mapping(entry, f"{key}.{name}")
        ctx.check_keys(entry, allowed, f"{key}.{name}.")
        entry["overrides"] = ctx.overrides(entry.get("overrides", {}), f"{key}.{name}.overrides")
        out[str(name)] = entry
    return out


def _parse_settings(ctx: _Ctx, value: Any) -> dict[str, dict[str, Any]]:
    settings = _parse_named(ctx, value, "settings", _SETTING_KEYS)
    for name, entry in settings.items():
        if name in allowed_values(SETTING_KEY):  # a setting of the core config
            entry["overrides"] = {SETTING_KEY: name, **entry["overrides"]}
        elif not entry["overrides"]:
            raise ctx.error(f"setting {name!r} is not one of "
                            f"{', '.join(allowed_values(SETTING_KEY))}; "
                            f"give it overrides (settings.{name}.overrides) that select it")
    return settings


def _parse_methods(ctx: _Ctx, value: Any, datasets: Any, template: str,
                   labels: Mapping[str, Any]) -> list[_MethodEntry]:
    if value == "*":
        value = _discover_methods(ctx, datasets, template)
    named = _parse_named(ctx, value, "methods", _METHOD_KEYS)
    out = []
    for name, entry in named.items():
        config = entry.get("config")
        if config is not None and not isinstance(config, str):
            raise ctx.error(f"methods.{name}.config must be a path")
        label = entry.get("label", labels.get(name)) or _method_label(name)
        out.append(_MethodEntry(name=name, config=config, overrides=entry["overrides"],
                                label=str(label),
                                speed_args=ctx.args(entry.get("speed_args", []),
                                                    f"methods.{name}.speed_args")))
    return out


def _method_label(name: str) -> str:
    """The display label of the installed method ``name`` (its ``Method.label``), else the name
    (a spec entry that is no method of its own, e.g. another mode of one)."""
    from zsseg_bench.config.projects import find_method

    method = find_method(name)
    return method.label if method is not None else name


def _discover_methods(ctx: _Ctx, datasets: Any, template: str) -> dict[str, Any]:
    """``methods: "*"``: every installed method (:func:`~zsseg_bench.config.projects.list_methods`)
    with a config for every dataset of the spec.

    A method's config for a dataset is the file ``config_template`` names, else, for a method
    that ships its own configs (an external plug-in; see ``projects/README.md``), its own
    ``<configs>/<dataset>/<name>.yaml``.
    """
    from zsseg_bench.config.projects import list_methods

    if "{method}" not in template:
        raise ctx.error('methods: "*" needs a config_template containing {method}')
    names = [datasets] if isinstance(datasets, str) else list(datasets or [])
    out: dict[str, Any] = {}
    for method in list_methods():
        spec_configs = [ctx.path.parent / template.format(method=method.name, dataset=d)
                        for d in names]
        if all(p.is_file() for p in spec_configs):
            out[method.name] = None
            continue
        own = [method.own_config_file(d) for d in names]
        if names and all(own):
            out[method.name] = {"config": str(method.configs / method.config_template.format(
                dataset="{dataset}", name=method.name))}
    if not out:
        raise ctx.error(f'methods: "*" found no installed method with a config matching '
                        f"{template} for datasets {names} (relative to the spec file)")
    return out


def _parse_variants(ctx: _Ctx, variants: Any, grid: Any) -> dict[str, dict[str, Any]]:
    variants = ctx.mapping(variants, "variants")
    named = {str(k): ctx.overrides(v, f"variants.{k}") for k, v in variants.items()}
    if not named:
        named = {DEFAULT_VARIANT: {}}
    grid = ctx.mapping(grid, "grid")
    axes = []
    for key, values in grid.items():
        if not isinstance(values, list) or not values:
            raise ctx.error(f"grid.{key} must be a non-empty list of values")
        axes.append([(key, v) for v in values])
    out: dict[str, dict[str, Any]] = {}
    for base, combo in itertools.product(named, itertools.product(*axes)):
        parts = [] if base == DEFAULT_VARIANT and combo else [base]
        parts += [f"{k}={format_opt_value(v)}" for k, v in combo]
        out[",".join(parts)] = {**named[base], **dict(combo)}
    return out


def _parse_commands(ctx: _Ctx, value: Any) -> dict[str, list[str]]:
    value = ctx.mapping(value, "commands")
    ctx.check_keys(value, STAGES, "commands.")
    commands = {k: list(v) for k, v in DEFAULT_COMMANDS.items()}
    for stage, template in value.items():
        if (not isinstance(template, list) or not template
                or not all(isinstance(t, str) for t in template)):
            raise ctx.error(f"commands.{stage} must be a list of strings")
        commands[stage] = list(template)
    return commands
