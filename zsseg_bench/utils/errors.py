"""The one exception type for mistakes a user can fix (bad config, missing file, bad data)."""

from __future__ import annotations

import re
from collections.abc import Callable


class UserError(Exception):
    """An error caused by the user's input, with a message that names the culprit and the fix.

    The CLI prints such errors as one line on stderr and exits with code 2, without a traceback.
    Anything else escaping the CLI is a bug in the suite and keeps its traceback.
    """


def config_file_not_found(path: str) -> UserError:
    """The error of a config file that does not exist (checked by the CLI before anything
    heavy is imported, and by ``CfgNode.merge_from_file``)."""
    return UserError(f"config file not found: {path} (pass an existing YAML, e.g. one under "
                     "configs/)")


class OptionError(UserError):
    """A bad value of a library option (a field of a request or protocol dataclass).

    The library names options by their field, marked ``<<field>>`` in ``template``; ``str()``
    gives the field names (``input_size``), :meth:`named` another spelling, e.g. a command's
    flags (``--input-size``), so the library knows nothing of a command line.
    """

    def __init__(self, template: str):
        self.template = template
        super().__init__(self.named(lambda field: field))

    def named(self, name: Callable[[str], str]) -> str:
        """The message with every ``<<field>>`` replaced by ``name(field)``."""
        return re.sub(r"<<(\w+)>>", lambda m: name(m.group(1)), self.template)


def cli_flag(field: str) -> str:
    """The command-line flag of an option field (``input_size`` -> ``--input-size``)."""
    return "--" + field.replace("_", "-")
