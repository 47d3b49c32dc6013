"""User-facing errors.

Every failure the operator can fix is a `KitError`: it carries one line saying what is wrong and
what to do, and the CLI turns it into that line plus an exit status. Nothing else should reach the
user as a traceback. Messages must never contain a secret: callers pass masked values only.
"""

from __future__ import annotations

# A message part longer than this was built from a hostile value; cut it so the "one line"
# stays readable (parsers already shorten the values they quote, this is the net under them).
MAX_PART = 500


def _cap(text: str) -> str:
    text = " ".join(text.splitlines())  # one line, whatever a value held
    if len(text) <= MAX_PART:
        return text
    return f"{text[: MAX_PART - 30]}... ({len(text)} characters)"


class KitError(Exception):
    """A failure the operator can act on; `str()` is the one line shown to them."""

    exit_code = 1

    def __init__(self, message: str, fix: str | None = None) -> None:
        self.message = message
        self.fix = fix
        super().__init__(self.line())

    def line(self) -> str:
        """The single line printed to the user: the problem, then the fix."""
        if self.fix:
            return f"{_cap(self.message)}: {_cap(self.fix)}"
        return _cap(self.message)


class UsageError(KitError):
    """Bad input (settings, options, files): exit status 2, nothing was changed."""

    exit_code = 2


class SettingsError(UsageError):
    """A setting has an invalid value or cannot be read."""


class SecretsError(UsageError):
    """The `.env` holding the secrets is unreadable or invalid."""


class ApiError(KitError):
    """The GlitchTip API refused a request or could not be reached."""

    def __init__(self, message: str, fix: str | None = None, status: int | None = None) -> None:
        self.status = status
        super().__init__(message, fix)


class StepError(KitError):
    """A step of `provision up` failed; names the step and the command to run next."""

    def __init__(self, step: str, cause: str, next_command: str) -> None:
        self.step = step
        self.cause = cause
        self.next_command = next_command
        super().__init__(f"step '{step}' failed: {cause}", f"then run: {next_command}")
