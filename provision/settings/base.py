"""What every part of the settings shares: the file names, where a value came from, the
parsers' complaint (`Invalid`) and how a value is quoted in a message."""

from __future__ import annotations

SETTINGS_FILE = "glitchtip.yaml"

ENV_FILE = ".env"

SOURCE_OPTION = "option"

SOURCE_ENVIRONMENT = "environment"

SOURCE_FILE = "file"

SOURCE_ENV_FILE = ".env"

SOURCE_DEFAULT = "default"

SOURCE_DERIVED = "derived"


class Invalid(ValueError):
    """A parser's complaint: what is wrong, and the fix."""

    def __init__(self, problem: str, fix: str) -> None:
        super().__init__(problem)
        self.problem = problem
        self.fix = fix


MAX_SHOWN = 60


def shown(value: object) -> str:
    """`value` quoted for a message, cut to MAX_SHOWN characters: an error line stays one line
    of reasonable length even for a 10 MB value."""
    text = repr(str(value)) if not isinstance(value, str) else repr(value)
    if len(text) <= MAX_SHOWN:
        return text
    return f"{text[: MAX_SHOWN - 5]}...' ({len(str(value))} characters)"
