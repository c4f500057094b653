"""The class names of ``zsseg-bench predict``: ``--classes``, ``--classes-file`` or
``--vocabulary``.

- ``--classes "cat,dog,grass"``: names separated by commas; or a list, ``'["cat", "dog"]'``
  (JSON or Python), whose names may hold commas themselves (synonyms, as ADE20K-847 lists
  them: ``"wall, brick wall"``). Other separators (``;``, ``|``, tabs, newlines) and quoted
  names are refused with the format, never read as odd class names.
- ``--classes-file FILE``: a text file with one name per line (blank lines and ``#`` comments
  skipped), a JSON list of names, or a ``classes.json`` written by ``predict`` (its ``name``
  entries, in id order).
- ``--vocabulary DATASET``: the class list of a registered dataset.

Blank names and names given twice (ignoring case) are errors
(:func:`zsseg_bench.engine.predictor.check_class_names`).
"""

from __future__ import annotations

import ast
import json
from pathlib import Path
from typing import Any

from zsseg_bench.utils.errors import UserError

FORMAT = ('separate class names with commas ("cat,dog,grass"), give a list (\'["cat", '
          '"dog"]\'), or use --classes-file FILE (one name per line)')
_OTHER_SEPARATORS = (";", "|", "\t", "\n")
_QUOTES = "\"'"


def _as_names(value: Any, source: str) -> list[str]:
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise UserError(f"{source}: expected a list of class names (strings), got "
                        f"{value!r}")
    return list(value)


def parse_classes(text: str) -> list[str]:
    """The names of ``--classes`` (see the module docstring)."""
    stripped = text.strip()
    if stripped.startswith("["):
        for parse in (json.loads, ast.literal_eval):
            try:
                return _as_names(parse(stripped), f"--classes {text!r}")
            except (ValueError, SyntaxError):
                continue
        raise UserError(f"--classes {text!r} starts like a list but is not one: {FORMAT}")
    for sep in _OTHER_SEPARATORS:
        if sep in stripped:
            raise UserError(f"--classes {text!r} holds {sep!r}: {FORMAT}")
    names = [n.strip() for n in stripped.split(",")]
    quoted = [n for n in names if n and (n[0] in _QUOTES or n[-1] in _QUOTES)]
    if quoted:
        raise UserError(f"--classes {text!r}: the name {quoted[0]} is quoted: {FORMAT}")
    return names


def read_classes_file(path: str) -> list[str]:
    """The names of ``--classes-file`` (see the module docstring)."""
    try:
        text = Path(path).read_text(encoding="utf-8")
    except OSError as e:
        raise UserError(f"--classes-file {path}: {e.strerror}") from None
    except UnicodeDecodeError:
        raise UserError(f"--classes-file {path} is not UTF-8 text") from None
    if path.lower().endswith(".json") or text.lstrip().startswith(("[", "{")):
        try:
            data = json.loads(text)
        except ValueError as e:
            raise UserError(f"--classes-file {path} is not valid JSON ({e})") from None
        if isinstance(data, dict) and isinstance(data.get("classes"), list):
            data = [c.get("name") if isinstance(c, dict) else c for c in data["classes"]]
        return _as_names(data, f"--classes-file {path}")
    return [line.strip() for line in text.splitlines()
            if line.strip() and not line.lstrip().startswith("#")]
