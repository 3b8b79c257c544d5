"""Token usage as Timbal's SDK records it: one count per ``"<model>:<counter>"`` key.

A span's ``usage`` maps keys such as ``"openai/gpt-4o-mini:input_tokens"`` to counts.
:func:`parse_usage` reads one tolerantly (keys that are not strings and counts that are
not whole numbers are left out), :func:`group_usage` groups it by model and
:func:`token_totals` sums input and output tokens over the models. What a run used in
all (each span's own usage, summed over the tree) is
:meth:`timbal_integrations.trace.Trace.usage`.
"""

from __future__ import annotations

from collections.abc import Mapping

__all__ = ["group_usage", "parse_usage", "token_totals", "whole_number"]


def whole_number(value: object) -> int | None:
    """An int, or a float holding a whole number; anything else (bools too) is None."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, float) and value.is_integer():
        return int(value)
    return None


def parse_usage(value: object) -> dict[str, int]:
    """A usage mapping's string keys with whole-number counts; anything else is ``{}``."""
    if not isinstance(value, Mapping):
        return {}
    usage: dict[str, int] = {}
    for key, count in value.items():
        number = whole_number(count)
        if isinstance(key, str) and number is not None:
            usage[key] = number
    return usage


def group_usage(usage: Mapping[str, int]) -> dict[str, dict[str, int]]:
    """``{"openai/gpt-4o:input_tokens": 3}`` as ``{"openai/gpt-4o": {"input_tokens": 3}}``.

    Keys are split at their first colon; a key without one is grouped under ``""``.
    Models and counters come out sorted.
    """
    grouped: dict[str, dict[str, int]] = {}
    for key in sorted(usage):
        model, colon, counter = key.partition(":")
        if not colon:
            model, counter = "", key
        group = grouped.setdefault(model, {})
        group[counter] = group.get(counter, 0) + usage[key]
    return grouped


def token_totals(usage: Mapping[str, int]) -> tuple[int, int]:
    """Input and output tokens of ``usage``, summed over its models (counters named
    ``input_tokens`` and ``output_tokens``; cached input is part of input)."""
    spent_in = spent_out = 0
    for key, count in usage.items():
        counter = key.partition(":")[2]
        if counter == "input_tokens":
            spent_in += count
        elif counter == "output_tokens":
            spent_out += count
    return spent_in, spent_out
