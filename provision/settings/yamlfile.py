"""Reading glitchtip.yaml: capped, never blocking, its YAML shape checked before PyYAML
builds anything, unknown settings refused with a suggestion."""

from __future__ import annotations

import difflib
from pathlib import Path

from provision.errors import SettingsError
from provision.settings.base import MAX_SHOWN, shown
from provision.settings.specs import SPEC_BY_NAME, SPECS
from provision.yamlshape import Frame, check_shape


def _key_text(key: object) -> str:
    """A setting name as written in a message: bare when it is short and printable."""
    text = str(key)
    return text if len(text) <= MAX_SHOWN and text.isprintable() else shown(text)


def _suggest(key: str) -> str:
    for spec in SPECS:
        if key.upper() == spec.env:
            return f"did you mean {spec.name}? (glitchtip.yaml uses setting names)"
    close = difflib.get_close_matches(key, list(SPEC_BY_NAME), n=1)
    if close:
        return f"did you mean {close[0]}?"
    return "see the settings reference in docs/settings.md or `provision config`"


MAX_SETTINGS_BYTES = 256 * 1024

# Settings whose value in glitchtip.yaml is a mapping, and how deep it may nest below the
# setting (error_budgets: project -> {max_errors, per}).
MAPPING_DEPTH: dict[str, int] = {"error_budgets": 2}


class _SettingsShape:
    """glitchtip.yaml's shape (`provision.yamlshape`): one mapping of settings, no lists
    anywhere, nested mappings only under the settings of `MAPPING_DEPTH` and no deeper."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.name = path.name

    def anchor(self, line: int) -> Exception:
        return SettingsError(
            f"{self.name}: line {line} uses a YAML anchor or alias (& or *)",
            "write each setting's value out in full",
        )

    def second_document(self, line: int) -> Exception:
        return SettingsError(
            f"{self.name}: line {line} starts a second YAML document",
            f"keep one 'setting: value' per line in {self.path}, without '---'",
        )

    def duplicate(self, frame: Frame, key: str, first: int, line: int) -> Exception:
        inside = f"{frame.keys[0]}: " if frame.keys else ""
        return SettingsError(
            f"{self.name}: {inside}{shown(key)} is set twice (lines {first} and {line})",
            "delete one of the two lines (YAML would silently keep the last)",
        )

    def collection(self, parent: Frame | None, is_mapping: bool, depth: int, line: int) -> None:
        if parent is None:
            if not is_mapping:
                raise SettingsError(
                    f"{self.name}: is not a mapping of settings",
                    "write one 'setting: value' per line",
                )
            return
        setting = parent.keys[0] if parent.keys else parent.last_key
        allowed = MAPPING_DEPTH.get(setting, 0)
        if parent.expecting_key or not is_mapping or len(parent.keys) >= allowed:
            what = "a key" if parent.expecting_key else f"{parent.last_key}: its value"
            fix = "give each setting a single value ('setting: value')"
            if setting in MAPPING_DEPTH:
                fix = (
                    "write budgets as `error_budgets:` then "
                    "`  <project>: {max_errors: 200, per: 1d}`"
                )
            raise SettingsError(f"{self.name}: line {line}: {what} is a list or mapping", fix)


def _check_yaml_shape(text: str, path: Path) -> None:
    """Refuse, from the YAML event stream (no objects built, no recursion), what a file of
    settings never needs and a hostile one uses: anchors and aliases, lists anywhere, mappings
    except under the settings of `MAPPING_DEPTH` and no deeper than it says, more than one
    document, and a key written twice in one mapping (`provision.yamlshape`)."""
    check_shape(text, _SettingsShape(path))


def read_settings_file(path: Path) -> dict[str, object]:
    """The mapping in glitchtip.yaml ({} if absent); unknown keys are refused.

    The file is read without blocking (a FIFO is refused, not waited on) and capped in size;
    its shape is checked before PyYAML builds anything (see `_check_yaml_shape`)."""
    import yaml

    from provision.fileio import read_text_file

    text = read_text_file(path, max_bytes=MAX_SETTINGS_BYTES, error=SettingsError)
    if text is None:
        return {}
    try:
        _check_yaml_shape(text, path)
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1}" if mark is not None else ""
        raise SettingsError(
            f"{path.name}: not valid YAML{where}",
            f"fix the syntax of {path} (one 'setting: value' per line)",
        ) from None
    except (ValueError, RecursionError, OverflowError):
        # e.g. an integer of thousands of digits (int() refuses), or a pathological scalar
        raise SettingsError(
            f"{path.name}: a value cannot be read as a setting",
            f"check the values in {path}: whole numbers of a few digits, true/false, or text",
        ) from None
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise SettingsError(
            f"{path.name}: is not a mapping of settings", "write one 'setting: value' per line"
        )
    for key in data:
        if not isinstance(key, str) or key not in SPEC_BY_NAME:
            raise SettingsError(
                f"{_key_text(key)}: unknown setting in {path.name}", _suggest(str(key)[:100])
            )
    return data
