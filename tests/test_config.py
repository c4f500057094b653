"""Config defaults, _BASE_ inheritance, overrides and the unknown-key error."""

from pathlib import Path

import pytest

from zsseg_bench.config import get_cfg, validate_cfg
from zsseg_bench.config.command_line import setup_cfg
from zsseg_bench.modeling.clip.templates import get_templates
from zsseg_bench.utils.errors import UserError


def test_defaults_have_detectron2_layout():
    cfg = get_cfg()
    assert cfg.MODEL.META_ARCHITECTURE == "ZeroShotSegmentor"
    assert cfg.ZERO_SHOT.SETTING == "inductive"
    assert cfg.TEST.MODE == "whole"
    for key in ("HEAD", "CLIP"):
        assert key in cfg.MODEL
    assert cfg.MODEL.CLIP.RANDOM_INIT is False
    assert get_cfg() is not get_cfg()  # a fresh copy each time


def _write(path: Path, text: str) -> str:
    path.write_text(text)
    return str(path)


def test_base_inheritance_and_overrides(tmp_path):
    _write(tmp_path / "Base.yaml", "SOLVER:\n  MAX_ITER: 100\n  BASE_LR: 0.5\nSEED: 3\n")
    child = _write(tmp_path / "child.yaml", "_BASE_: Base.yaml\nSOLVER:\n  MAX_ITER: 7\n")
    cfg = setup_cfg(child, ["SEED", "11"], output_dir=str(tmp_path / "run"))
    assert cfg.SOLVER.MAX_ITER == 7  # child wins
    assert cfg.SOLVER.BASE_LR == 0.5  # inherited
    assert cfg.SEED == 11  # command line wins
    assert cfg.OUTPUT_DIR == str(tmp_path / "run")
    assert cfg.is_frozen()


def test_unknown_key_in_yaml_names_key_and_suggestions(tmp_path):
    bad = _write(tmp_path / "bad.yaml", "SOLVER:\n  MAX_ITERS: 7\n")
    with pytest.raises(UserError) as e:
        setup_cfg(bad)
    msg = str(e.value)
    assert "SOLVER.MAX_ITERS" in msg and "bad.yaml" in msg and "SOLVER.MAX_ITER" in msg


def test_unknown_key_on_command_line(tmp_path):
    ok = _write(tmp_path / "ok.yaml", "SEED: 1\n")
    with pytest.raises(UserError) as e:
        setup_cfg(ok, ["MODEL.CLIP.WEIGHT", "x.pt"])
    assert "MODEL.CLIP.WEIGHT " in str(e.value) + " " and "MODEL.CLIP.WEIGHTS" in str(e.value)
    with pytest.raises(UserError, match="KEY VALUE pairs"):
        setup_cfg(ok, ["SEED"])


def test_missing_config_file_and_bad_choice(tmp_path):
    with pytest.raises(UserError, match="config file not found"):
        setup_cfg(str(tmp_path / "nope.yaml"))
    cfg = get_cfg()
    cfg.ZERO_SHOT.SETTING = "semi"
    with pytest.raises(UserError, match="ZERO_SHOT.SETTING"):
        validate_cfg(cfg)


def test_projects_are_discovered_through_entry_points():
    from importlib.metadata import entry_points

    from zsseg_bench.config.projects import GROUP, Method, get_method, list_methods, load_projects

    methods = list_methods()
    assert {"zegclip", "two_stage"} <= {m.name for m in methods}
    # One description per entry point, named after it; the repository's methods are exactly
    # its packages (setup.py derives the entry points from projects/<name>/__init__.py).
    assert [m.name for m in methods] == sorted({ep.name for ep in entry_points(group=GROUP)})
    repo = Path(__file__).resolve().parents[1] / "projects"
    assert {p.parent.name for p in repo.glob("*/__init__.py")} <= {m.name for m in methods}
    assert all(isinstance(m, Method) and m.label and callable(m.add_config) for m in methods)
    assert load_projects() == {m.name: m.add_config for m in methods}
    with pytest.raises(UserError, match="no method 'nope' is installed"):
        get_method("nope")


def test_a_plain_config_function_entry_point_is_a_method_with_defaults(tmp_path):
    from importlib.metadata import EntryPoint

    from zsseg_bench.config.projects import Method, _describe, get_method

    pkg = tmp_path / "plug"
    (pkg / "configs" / "synthetic").mkdir(parents=True)
    (pkg / "__init__.py").write_text("def add_plug_config(cfg):\n    pass\n")
    (pkg / "configs" / "synthetic" / "plug.yaml").write_text("SEED: 1\n")
    ep = EntryPoint("plug", "plug:add_plug_config", "zsseg_bench.projects")
    import sys

    sys.path.insert(0, str(tmp_path))
    try:
        method = _describe(ep, ep.load())
    finally:
        sys.path.remove(str(tmp_path))
        sys.modules.pop("plug", None)
    assert method.label == "plug" and method.configs == pkg / "configs"
    assert method.toy_config == pkg / "configs" / "synthetic" / "plug.yaml"
    assert method.own_config_file("voc") is None
    with pytest.raises(UserError, match="Method.name must be the entry point's name"):
        _describe(ep, Method(name="other", add_config=print))
    # A module that binds METHOD for that function is described by it (what an install whose
    # entry points still name the config function finds).
    fn = get_method("zegclip").add_config
    stale = EntryPoint("zegclip", "zsseg_bench.projects.zegclip:add_zegclip_config",
                       "zsseg_bench.projects")
    assert _describe(stale, fn) is get_method("zegclip")


def test_one_table_of_allowed_values_extended_by_methods(tmp_path):
    from zsseg_bench.config.allowed import allow, allowed_values

    assert allowed_values("ZERO_SHOT.SETTING") == ("inductive", "transductive", "fully")
    ok = _write(tmp_path / "ok.yaml", "SEED: 1\n")
    setup_cfg(ok)  # loads every method: the two-stage keys declare their choices
    assert allowed_values("MODEL.TWO_STAGE.CLIP_ENSEMBLE.MODE") == ("batched", "loop")
    with pytest.raises(UserError, match="MODEL.TWO_STAGE.CLIP_ENSEMBLE.MODE = 'fast' is not "
                                        "one of batched, loop"):
        setup_cfg(ok, ["MODEL.TWO_STAGE.CLIP_ENSEMBLE.MODE", "fast"])
    with pytest.raises(UserError, match="TEST.MODE = 'tiles' is not one of whole, slide"):
        setup_cfg(ok, ["TEST.MODE", "tiles"])
    allow("TEST.MODE", ("whole", "slide"))  # declaring the same choices again is a no-op
    with pytest.raises(ValueError, match="already"):
        allow("TEST.MODE", ("whole",))


def test_changed_keys_are_what_differs_from_the_base():
    from zsseg_bench.config.config import CfgNode, changed_keys

    base = get_cfg()
    cfg = get_cfg()
    cfg.SOLVER.MAX_ITER = 7
    cfg.SEED = base.SEED  # set, but to the default
    cfg.MODEL.EXTRA = CfgNode({"A": 1})  # a key the base lacks (another method's)
    assert changed_keys(cfg, base) == {"SOLVER.MAX_ITER": 7, "MODEL.EXTRA.A": 1}
    assert changed_keys(base, cfg) == {"SOLVER.MAX_ITER": base.SOLVER.MAX_ITER}


def test_get_cfg_merges_any_methods_config_as_in_detectron2():
    from zsseg_bench.config.projects import list_methods

    for method in list_methods():
        if method.toy_config is None:
            continue
        cfg = get_cfg()
        cfg.merge_from_file(str(method.toy_config))
        assert cfg.MODEL.HEAD.NAME == method.head
    assert "ALIGNZEG" in get_cfg().MODEL and "ALIGNZEG" not in get_cfg(methods=False).MODEL


def test_a_missing_config_file_is_reported_before_torch_is_imported(tmp_path):
    import subprocess
    import sys

    code = ("import sys; from zsseg_bench.cli import main; "
            "rc = main(['train', '--config-file', sys.argv[1]]); "
            "print(rc, 'torch' in sys.modules)")
    res = subprocess.run([sys.executable, "-c", code, str(tmp_path / "nope.yaml")],
                         capture_output=True, text=True, timeout=120)
    assert res.stdout.split() == ["2", "False"], res.stdout + res.stderr
    assert res.stderr.strip() == (f"zsseg-bench train: error: config file not found: "
                                  f"{tmp_path / 'nope.yaml'} (pass an existing YAML, e.g. one "
                                  "under configs/)")


def test_templates_take_a_set_name_or_a_list(tmp_path):
    # MODEL.CLIP.TEMPLATES: a registered set or a list of one's own (zsseg's VOC config:
    # "a sculpture of a {}."), from a YAML file or the command line, both ways round
    f = tmp_path / "c.yaml"
    f.write_text('MODEL:\n  CLIP:\n    TEMPLATES: ["a sculpture of a {}.", "a {} here"]\n')
    cfg = setup_cfg(str(f), [])
    assert cfg.MODEL.CLIP.TEMPLATES == ["a sculpture of a {}.", "a {} here"]
    cfg = setup_cfg(str(f), ["MODEL.CLIP.TEMPLATES", "vild_14"])
    assert cfg.MODEL.CLIP.TEMPLATES == "vild_14"
    cfg = get_cfg()
    cfg.merge_from_list(["MODEL.CLIP.TEMPLATES", "['a photo of the {}.']"])
    assert cfg.MODEL.CLIP.TEMPLATES == ["a photo of the {}."]
    for bad in ("3", "[]", "[1, 2]"):
        with pytest.raises(UserError, match="MODEL.CLIP.TEMPLATES"):
            cfg.merge_from_list(["MODEL.CLIP.TEMPLATES", bad])
    assert cfg.MODEL.CLIP.TEMPLATES == ["a photo of the {}."]  # a refused value changes nothing
    with pytest.raises(UserError, match="MODEL.CLIP.TEMPLATES"):
        get_templates(["a photo without a placeholder"])


def test_suite_configs_resolve_installed_package_data_first(tmp_path, monkeypatch):
    from zsseg_bench.config import suite_configs

    repo = Path(__file__).resolve().parents[1] / "configs"
    assert suite_configs.get_config_file("sweeps/paper_voc.yaml") == repo / "sweeps" / \
        "paper_voc.yaml"
    with pytest.raises(UserError, match="the suite ships no config voc/nope.yaml"):
        suite_configs.get_config_file("voc/nope.yaml")
    # A wheel: <site-packages>/zsseg_bench/configs (package data) wins over a folder beside it.
    installed = tmp_path / "zsseg_bench" / "configs"
    (installed / "sweeps").mkdir(parents=True)
    (installed / "sweeps" / "paper_voc.yaml").write_text("name: installed\n")
    monkeypatch.setattr(suite_configs, "_CANDIDATES", (installed, repo))
    assert suite_configs.get_config_file("sweeps/paper_voc.yaml").read_text() == \
        "name: installed\n"
    monkeypatch.setattr(suite_configs, "_CANDIDATES", (tmp_path / "none",))
    with pytest.raises(UserError, match="the suite's configs are missing"):
        suite_configs.configs_root()


def test_setup_installs_every_config_as_package_data(monkeypatch):
    """setup.py maps configs/ and each folder below it into zsseg_bench.configs.<...> with its
    YAML files and READMEs as package data (what `pip install .` / a wheel ships)."""
    import ast

    repo = Path(__file__).resolve().parents[1]
    tree = ast.parse((repo / "setup.py").read_text(encoding="utf-8"))
    fn = next(n for n in tree.body if isinstance(n, ast.FunctionDef)
              and n.name == "config_packages")
    namespace: dict = {"Path": Path}
    exec(compile(ast.Module([fn], []), "setup.py", "exec"), namespace)  # noqa: S102
    monkeypatch.chdir(repo)
    mapping = namespace["config_packages"]()
    shipped = {Path(folder) / p.name for folder in mapping.values()
               for pattern in ("*.yaml", "*.md") for p in (repo / folder).glob(pattern)}
    every = {p.relative_to(repo) for p in (repo / "configs").rglob("*") if p.is_file()}
    assert every == shipped
    assert mapping["zsseg_bench.configs.sweeps"] == str(Path("configs", "sweeps"))


#: Core files that may name a method: the published figures (the papers' own file names) and
#: the prompt-template sets named after the code they come from.
NAMES_ITS_SOURCES = {"evaluation/published.py", "modeling/clip/templates.py"}


def test_no_method_is_named_in_core_code():
    """The core learns of methods from list_methods() only: no string in its code (docstrings
    and comments aside) names an installed method, its head or its config keys."""
    import ast
    import re

    from zsseg_bench.config.projects import list_methods

    words = set()
    for m in list_methods():
        words |= {m.name, f"MODEL.{m.name.upper()}"} | ({m.head} if m.head else set())
    pattern = re.compile(r"(?<![A-Za-z])(" + "|".join(map(re.escape, sorted(words))) +
                         r")(?![A-Za-z])")
    core = Path(__file__).resolve().parents[1] / "zsseg_bench"
    found = []
    for path in sorted(core.rglob("*.py")):
        if path.relative_to(core).as_posix() in NAMES_ITS_SOURCES:
            continue
        tree = ast.parse(path.read_text(encoding="utf-8"))
        docstrings = {id(node.body[0].value) for node in ast.walk(tree)
                      if isinstance(node, (ast.Module, ast.ClassDef, ast.FunctionDef,
                                           ast.AsyncFunctionDef))
                      and node.body and isinstance(node.body[0], ast.Expr)
                      and isinstance(node.body[0].value, ast.Constant)}
        found += [f"{path.relative_to(core)}:{node.lineno}: {node.value!r}"
                  for node in ast.walk(tree)
                  if isinstance(node, ast.Constant) and isinstance(node.value, str)
                  and id(node) not in docstrings and pattern.search(node.value)]
    assert not found, found


def test_projects_readme_lists_every_method_of_the_repository():
    from zsseg_bench.config.projects import get_method

    repo = Path(__file__).resolve().parents[1]
    text = (repo / "projects" / "README.md").read_text(encoding="utf-8")
    for init in sorted((repo / "projects").glob("*/__init__.py")):
        name = init.parent.name
        assert f"`{name}/` | [{name}/README.md]({name}/README.md)" in text, name
        assert get_method(name).label
