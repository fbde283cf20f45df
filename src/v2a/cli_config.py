"""Map a frozen config dataclass to argparse flags and back (one flag per field, help from the docstring)."""

from __future__ import annotations

import argparse
import dataclasses
import re
import types
import typing
from typing import Any


def add_config_flags(
    parser: argparse.ArgumentParser, cls: type, *, skip: tuple[str, ...] = (), required: tuple[str, ...] = ()
) -> None:
    """Add ``--field-name`` for every field of dataclass ``cls`` (``bool`` fields become on/off switches).

    Tuple fields take several values (``--data a b`` or repeated ``--data a --data b``); a field whose
    default is None accepts ``none`` to mean None. Help text comes from the class docstring's Attributes.
    """
    docs = _attribute_docs(cls)
    hints = typing.get_type_hints(cls)
    for field in dataclasses.fields(cls):
        if field.name in skip:
            continue
        flag = "--" + field.name.replace("_", "-")
        kind, optional = _base_type(hints[field.name])
        item = _tuple_item_type(hints[field.name]) if kind is tuple else None
        default = None if field.default is dataclasses.MISSING else field.default
        help_text = docs.get(field.name, "")
        if field.name not in required and default is not None:
            help_text = f"{help_text} (default {default})".strip()
        if kind is bool:
            parser.add_argument(flag, action=argparse.BooleanOptionalAction, default=default, help=help_text)
        elif kind is tuple:
            parser.add_argument(
                flag,
                nargs="+",
                type=item,
                action="extend",
                default=None,
                required=field.name in required,
                help=help_text,
            )
        else:
            parser.add_argument(
                flag,
                type=_none_or(kind) if optional else kind,
                default=default,
                required=field.name in required,
                help=help_text,
            )


def config_from_args(cls: type, args: argparse.Namespace, **overrides: Any) -> Any:
    """Build ``cls`` from parsed flags (fields not on the command line keep their defaults)."""
    values = {}
    for field in dataclasses.fields(cls):
        if field.name in overrides:
            values[field.name] = overrides[field.name]
        elif hasattr(args, field.name) and getattr(args, field.name) is not None:
            value = getattr(args, field.name)
            values[field.name] = tuple(value) if isinstance(value, list) else value
    return cls(**values)


def _base_type(hint: Any) -> tuple[type, bool]:
    """(the flag's value type, whether None is allowed) for a field annotation."""
    args = typing.get_args(hint)
    optional = type(None) in args
    if typing.get_origin(hint) in (typing.Union, types.UnionType):
        hint = next(a for a in args if a is not type(None))
    origin = typing.get_origin(hint) or hint
    if origin is tuple:
        return tuple, optional
    return (origin if origin in (bool, int, float, str) else str), optional


def _tuple_item_type(hint: Any) -> type:
    """Element type of ``tuple[float, float]`` / ``tuple[str, ...]`` (str when unknown)."""
    if typing.get_origin(hint) in (typing.Union, types.UnionType):
        hint = next(a for a in typing.get_args(hint) if a is not type(None))
    items = [a for a in typing.get_args(hint) if a is not Ellipsis]
    return items[0] if items and items[0] in (int, float, str) else str


def _none_or(kind: type):
    def parse(text: str):
        return None if text.lower() == "none" else kind(text)

    parse.__name__ = kind.__name__  # argparse names the type in its error messages
    return parse


def _attribute_docs(cls: type) -> dict[str, str]:
    """``name: text`` entries of the class docstring's Attributes section (continuation lines joined)."""
    doc = cls.__doc__ or ""
    docs: dict[str, str] = {}
    current = None
    for line in doc.split("Attributes:", 1)[-1].splitlines():
        match = re.match(r"\s{4,8}([a-z_][a-z0-9_, ]*):\s*(.*)", line)
        if match and not line.startswith(" " * 12):
            names = [n.strip() for n in match.group(1).split(",")]
            current = names
            for name in names:
                docs[name] = match.group(2).strip()
        elif current and line.strip():
            for name in current:
                docs[name] += " " + line.strip()
    return {k: v.replace("%", "%%") for k, v in docs.items()}
