"""Reading glitchtip.yaml: capped, never blocking, its YAML shape checked before PyYAML
builds anything, unknown settings refused with a suggestion."""

from __future__ import annotations

import difflib
from pathlib import Path
from typing import Any

from provision.errors import SettingsError
from provision.settings.base import MAX_SHOWN, shown
from provision.settings.specs import SPEC_BY_NAME, SPECS


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


def _check_yaml_shape(text: str, path: Path) -> None:
    """Refuse, from the YAML event stream (no objects built, no recursion), what a file of
    settings never needs and a hostile one uses: anchors and aliases (an "alias bomb" expands a
    few lines into gigabytes), lists anywhere, mappings except under the settings of
    `MAPPING_DEPTH` and no deeper than it says (deep nesting exhausts the stack), more than one
    document, and a key written twice in one mapping (YAML keeps the last one silently)."""
    import yaml

    name = path.name
    documents = 0
    # One frame per open mapping: [expecting a key?, last key, {key: line}, setting, depth].
    stack: list[list[Any]] = []
    for event in yaml.parse(text, Loader=yaml.SafeLoader):
        line = event.start_mark.line + 1 if event.start_mark else 0
        if isinstance(event, yaml.AliasEvent) or getattr(event, "anchor", None):
            raise SettingsError(
                f"{name}: line {line} uses a YAML anchor or alias (& or *)",
                "write each setting's value out in full",
            )
        if isinstance(event, yaml.DocumentStartEvent):
            documents += 1
            if documents > 1:
                raise SettingsError(
                    f"{name}: line {line} starts a second YAML document",
                    f"keep one 'setting: value' per line in {path}, without '---'",
                )
        elif isinstance(event, (yaml.MappingStartEvent, yaml.SequenceStartEvent)):
            if not stack:
                if isinstance(event, yaml.SequenceStartEvent):
                    raise SettingsError(
                        f"{name}: is not a mapping of settings",
                        "write one 'setting: value' per line",
                    )
                stack.append([True, "", {}, "", 0])
                continue
            frame = stack[-1]
            setting = frame[3] or frame[1]
            allowed = MAPPING_DEPTH.get(setting, 0)
            if frame[0] or isinstance(event, yaml.SequenceStartEvent) or frame[4] >= allowed:
                what = f"{frame[1]}: its value" if not frame[0] else "a key"
                fix = "give each setting a single value ('setting: value')"
                if setting in MAPPING_DEPTH:
                    fix = (
                        "write budgets as `error_budgets:` then "
                        "`  <project>: {max_errors: 200, per: 1d}`"
                    )
                raise SettingsError(f"{name}: line {line}: {what} is a list or mapping", fix)
            frame[0] = True  # the nested mapping is this key's value
            stack.append([True, "", {}, setting, frame[4] + 1])
        elif isinstance(event, yaml.MappingEndEvent):
            stack.pop()
        elif isinstance(event, yaml.ScalarEvent) and stack:
            frame = stack[-1]
            if frame[0]:
                key = event.value
                if key in frame[2]:
                    inside = f"{frame[3]}: " if frame[3] else ""
                    raise SettingsError(
                        f"{name}: {inside}{shown(key)} is set twice "
                        f"(lines {frame[2][key]} and {line})",
                        "delete one of the two lines (YAML would silently keep the last)",
                    )
                frame[2][key] = line
                frame[1] = key
            frame[0] = not frame[0]


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
