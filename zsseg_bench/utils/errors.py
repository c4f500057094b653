"""The one exception type for mistakes a user can fix (bad config, missing file, bad data)."""


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
