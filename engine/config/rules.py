"""Declarative checks of the config dataclasses: one :class:`Rule` per field, next to the class.

:func:`check_fields` runs in each spec's ``__post_init__``, so a config is checked however it
is built (a preset, a TOML/YAML file, a checkpoint, a CLI override through
``dataclasses.replace``). The type comes from the field's annotation, the bounds from the
rule; the message names the setting, the value and the valid range. Lists become tuples
and whole numbers given for a float become floats, so a checked spec is always hashable.
"""

from __future__ import annotations

import math
import numbers
import typing
from dataclasses import dataclass, fields
from typing import Any

from engine.errors import setting_error


@dataclass(frozen=True)
class Rule:
    """What values a field may take beyond its type.

    ``lo``/``hi`` bound every number in it (inclusive), ``choices`` every text in it,
    ``size`` the length of a variable-length list; ``note`` follows the range in messages.
    """

    lo: float | None = None
    hi: float | None = None
    choices: tuple[str, ...] = ()
    size: tuple[int, int] | None = None
    unit: str = ""
    note: str = ""


def _num(x: float) -> str:
    return str(int(x)) if float(x).is_integer() else f"{x:g}"


def _range(rule: Rule) -> str:
    unit = f" {rule.unit}" if rule.unit else ""
    if rule.lo is not None and rule.hi is not None:
        return f" from {_num(rule.lo)} to {_num(rule.hi)}{unit}"
    if rule.lo is not None:
        return f" of at least {_num(rule.lo)}{unit}"
    return ""


def describe(hint: Any, rule: Rule) -> str:
    """What a value of type ``hint`` under ``rule`` must be, in words."""
    if hint is bool:
        return "true or false"
    if hint is int:
        return "a whole number" + _range(rule)
    if hint is float:
        return "a number" + _range(rule)
    if hint is str:
        return f"one of {', '.join(rule.choices)}" if rule.choices else "a non-empty text"
    args = typing.get_args(hint)
    if len(args) == 2 and args[1] is Ellipsis:
        count = f" of {rule.size[0]} to {rule.size[1]} items" if rule.size else ""
        return f"a list{count}, each {describe(args[0], rule)}"
    return f"a list [{', '.join(describe(a, rule) for a in args)}]"


def _fail(name: str, value: Any, hint: Any, rule: Rule) -> None:
    expected = describe(hint, rule) + (f" ({rule.note})" if rule.note else "")
    if isinstance(value, str) and hint in (int, float) and _looks_numeric(value):
        expected += "; write it without quotes"
    raise setting_error(name, value, expected)


def _looks_numeric(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


def check_value(value: Any, hint: Any, rule: Rule, name: str) -> Any:
    """``value`` checked against type ``hint`` and ``rule``, normalised (tuples, floats);
    a :class:`~engine.errors.SettingError` naming ``name`` otherwise."""
    if hint is bool:
        if not isinstance(value, bool):
            _fail(name, value, hint, rule)
        return value
    if hint in (int, float):
        kind = numbers.Integral if hint is int else numbers.Real
        if isinstance(value, bool) or not isinstance(value, kind) or not math.isfinite(value):
            _fail(name, value, hint, rule)
        if (rule.lo is not None and value < rule.lo) or (rule.hi is not None and value > rule.hi):
            _fail(name, value, hint, rule)
        return hint(value)
    if hint is str:
        if not isinstance(value, str) or not value.strip() or (rule.choices and value not in rule.choices):
            _fail(name, value, hint, rule)
        return value
    return _check_tuple(value, hint, rule, name)


def _check_tuple(value: Any, hint: Any, rule: Rule, name: str) -> tuple[Any, ...]:
    if not isinstance(value, list | tuple):
        _fail(name, value, hint, rule)
    args = typing.get_args(hint)
    if len(args) == 2 and args[1] is Ellipsis:
        lo, hi = rule.size or (0, math.inf)
        if not lo <= len(value) <= hi:
            _fail(name, value, hint, rule)
        items = [check_value(v, args[0], rule, f"{name}[{i}]") for i, v in enumerate(value)]
    else:
        if len(value) != len(args):
            _fail(name, value, hint, rule)
        items = [check_value(v, a, rule, f"{name}[{i}]") for i, (v, a) in enumerate(zip(value, args, strict=True))]
    return tuple(items)


def check_fields(spec: Any, rules: dict[str, Rule], section: str) -> None:
    """Check and normalise every field of the frozen dataclass ``spec`` in place."""
    hints = typing.get_type_hints(type(spec))
    for f in fields(spec):
        value = check_value(getattr(spec, f.name), hints[f.name], rules.get(f.name, Rule()), f"{section}.{f.name}")
        object.__setattr__(spec, f.name, value)


def require(ok: bool, name: str, value: Any, expected: str) -> None:
    """A cross-field check: a SettingError unless ``ok``."""
    if not ok:
        raise setting_error(name, value, expected)


SEED = Rule(0, 2**32 - 1)  # any seed numpy and torch take
