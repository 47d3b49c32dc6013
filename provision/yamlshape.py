"""A YAML file's shape, checked from PyYAML's event stream before anything is built.

Both files the kit reads from an operator (`glitchtip.yaml`, `glitchtip-resources.yaml`) must
refuse what a hostile or careless file does to a YAML loader: anchors and aliases (an "alias
bomb" expands a few lines into gigabytes), deep nesting (the loader recurses), a second
document, and a key written twice in one mapping (YAML silently keeps the last one). The walk
is one loop over events, with no recursion and nothing built; what each file allows beyond
that (lists, nesting) and how each refusal is worded belong to the file, so they come in as
`ShapeRules`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Protocol


@dataclass
class Frame:
    """One open collection: a mapping or a list, and where it sits."""

    is_mapping: bool
    # The keys from the root mapping to this collection (lists add none).
    keys: tuple[str, ...] = ()
    # Each key of this mapping so far, with the line it was written on.
    seen: dict[str, int] = field(default_factory=dict)
    expecting_key: bool = True
    last_key: str = ""


class ShapeRules(Protocol):
    """What one file allows and how it words a refusal (each returns the error to raise)."""

    def anchor(self, line: int) -> Exception: ...

    def second_document(self, line: int) -> Exception: ...

    def duplicate(self, frame: Frame, key: str, first: int, line: int) -> Exception: ...

    def collection(self, parent: Frame | None, is_mapping: bool, depth: int, line: int) -> None:
        """Raise to refuse a list or mapping opening below `parent` (None: the document's
        root) at `depth` open collections; return to accept it."""


def check_shape(text: str, rules: ShapeRules) -> None:
    """Walk `text`'s YAML events once and raise what `rules` says at the first bad shape."""
    import yaml

    documents = 0
    stack: list[Frame] = []
    for event in yaml.parse(text, Loader=yaml.SafeLoader):
        line = event.start_mark.line + 1 if event.start_mark else 0
        if isinstance(event, yaml.AliasEvent) or getattr(event, "anchor", None):
            raise rules.anchor(line)
        if isinstance(event, yaml.DocumentStartEvent):
            documents += 1
            if documents > 1:
                raise rules.second_document(line)
        elif isinstance(event, (yaml.MappingStartEvent, yaml.SequenceStartEvent)):
            is_mapping = isinstance(event, yaml.MappingStartEvent)
            parent = stack[-1] if stack else None
            rules.collection(parent, is_mapping, len(stack), line)
            keys: tuple[str, ...] = ()
            if parent is not None:
                keys = (*parent.keys, parent.last_key) if parent.is_mapping else parent.keys
                parent.expecting_key = True  # the collection was the value of the last key
            stack.append(Frame(is_mapping, keys))
        elif isinstance(event, (yaml.MappingEndEvent, yaml.SequenceEndEvent)):
            stack.pop()
        elif isinstance(event, yaml.ScalarEvent) and stack and stack[-1].is_mapping:
            frame = stack[-1]
            if frame.expecting_key:
                if event.value in frame.seen:
                    raise rules.duplicate(frame, event.value, frame.seen[event.value], line)
                frame.seen[event.value] = line
                frame.last_key = event.value
            frame.expecting_key = not frame.expecting_key
