"""The one error type for problems a user can cause, and how its messages are worded.

A message is one line: what is wrong (the setting or the file, in the engine's words) and
the fix. Front ends add their own wording: the CLI names its flags, the dashboard its
widgets. Anything else that goes wrong is a bug and keeps its traceback.
"""

from __future__ import annotations

from pathlib import Path


class InputError(Exception):
    """A problem with what the user gave us; the message is one line with the fix."""


class SettingError(InputError, ValueError):
    """A setting out of its valid range. Also a ValueError: code that builds specs directly
    (tests, notebooks) catches what it always caught."""


def file_error(file: str | Path, problem: str, fix: str) -> InputError:
    """One line: the file, what is wrong with it, and what to do."""
    return InputError(f"{file}: {problem}; {fix}".replace("\n", " "))


def setting_error(name: str, value: object, expected: str) -> SettingError:
    """One line for a setting out of its valid range: its name, the value, what is valid."""
    return SettingError(f"setting {name} = {value!r} is invalid: {expected}".replace("\n", " "))


def with_flag(flag: str, err: InputError) -> InputError:
    """``err`` for a command-line option: prefixed by the flag, the fix in the flags' words."""
    text = f"{flag}: {err}"
    for words, option in (
        ("give it as the observations", "--obs"),
        ("give it as the world or an analysis", "--world or --analysis"),
    ):
        text = text.replace(words, f"give it as {option}")
    return InputError(text)
