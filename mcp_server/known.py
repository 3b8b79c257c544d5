"""Filter values that match nothing known, and workforce names resolved to ids.

When a listing or a summary finds no run, a bare "0 runs" leaves a model guessing
whether the filter was wrong (``status: "eror"``) or the answer is really none.
:func:`unknown_values` compares each string filter with the values known: the
statuses Timbal uses, and what the recent runs show (:mod:`mcp_server.recent`); a value
that is neither is reported with the known ones and the closest match.

:func:`resolve_workforce` turns a workforce *name* into its id the way ``user_email``
is matched: against the recent runs (bounded, and the scan is reported), exactly and
case-insensitively. A name two workforces share is ambiguous and refused, naming both.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any, Final

from timbal_integrations import defaults
from timbal_integrations.errors import QueryError
from timbal_integrations.models import KNOWN_STATUSES
from timbal_integrations.query import RunQuery

from .recent import Named, Snapshot

__all__ = [
    "KNOWN_SENTIMENTS",
    "Resolution",
    "check_workforce_name",
    "describe_unknown",
    "resolve_workforce",
    "unknown_values",
]

KNOWN_SENTIMENTS: Final = ("positive", "negative")
_SHOWN: Final = 12  # known values listed at most


def _close(value: str, options: Iterable[str]) -> str | None:
    import difflib  # only when a value is unknown: not at start-up

    lowered = {option.casefold(): option for option in options}
    match = difflib.get_close_matches(value.casefold(), list(lowered), n=1, cutoff=0.6)
    return lowered[match[0]] if match else None


def _named(items: Iterable[Named]) -> list[str]:
    ranked = sorted(items, key=lambda item: (-item.runs, item.id))
    return [f"{item.id} ({item.name})" if item.name else item.id for item in ranked]


def _entry(
    name: str, value: str, known: list[str], close: str | None, scanned: int
) -> dict[str, Any]:
    entry: dict[str, Any] = {"filter": name, "value": value, "known": known[:_SHOWN]}
    if len(known) > _SHOWN:
        entry["known_more"] = len(known) - _SHOWN
    if close is not None:
        entry["did_you_mean"] = close
    entry["scanned"] = scanned
    return entry


def unknown_values(query: RunQuery, snapshot: Snapshot) -> list[dict[str, Any]]:
    """The string filters of ``query`` whose value is not known: ``status`` and
    ``sentiment`` beside Timbal's own values and those of the recent runs;
    ``user_id`` and ``workforce_id`` beside the recent runs' (matched exactly)."""
    found: list[dict[str, Any]] = []
    scanned = snapshot.scanned
    values = (
        ("status", query.status, [*KNOWN_STATUSES, *snapshot.statuses]),
        ("sentiment", query.sentiment, [*KNOWN_SENTIMENTS, *snapshot.sentiments]),
    )
    for name, value, seen in values:
        known = list(dict.fromkeys(seen))
        if value is not None and value not in known:
            found.append(_entry(name, value, known, _close(value, known), scanned))
    # A close match may be found by a user's email or a workforce's name.
    ids: tuple[tuple[str, str | None, Mapping[str, Named], Callable[[Named], str]], ...] = (
        ("user_id", query.user_id, snapshot.users, lambda user: user.detail),
        ("workforce_id", query.workforce_id, snapshot.workforces, lambda force: force.name),
    )
    for name, value, named, alias in ids:
        if value is None or value in named:
            continue
        items = named.values()
        by_key = {i.id: i.id for i in items} | {alias(i): i.id for i in items if alias(i)}
        close = _close(value, by_key)
        chosen = by_key[close] if close is not None else None
        found.append(_entry(name, value, _named(items), chosen, scanned))
    return found


def describe_unknown(entry: dict[str, Any]) -> str:
    """One line for a model: what is unknown, what is known, the closest match."""
    scope = (
        "Timbal's values or those of the "
        if entry["filter"] in ("status", "sentiment")
        else "the values of the "
    )
    known = ", ".join(entry["known"]) or "none"
    more = f" and {entry['known_more']} more" if entry.get("known_more") else ""
    close = f"; did you mean {entry['did_you_mean']!r}?" if entry.get("did_you_mean") else ""
    return (
        f"{entry['filter']} {entry['value']!r} is not among {scope}{entry['scanned']} most "
        f"recent runs (known: {known}{more}){close}"
    )


@dataclass(frozen=True)
class Resolution:
    """A workforce name resolved against the recent runs: the id (None when no recent
    run's workforce has that name), the name as found, how many runs were scanned, and
    the known names with the closest one when nothing matched."""

    name: str
    workforce_id: str | None
    found_name: str | None
    scanned: int
    known: tuple[str, ...] = ()
    did_you_mean: str | None = None

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready, nulls left out."""
        data: dict[str, Any] = {"name": self.name, "scanned": self.scanned}
        if self.workforce_id is not None:
            data["workforce_id"] = self.workforce_id
        else:
            data["known"] = list(self.known[:_SHOWN])
            if self.did_you_mean is not None:
                data["did_you_mean"] = self.did_you_mean
        return data


def check_workforce_name(name: object) -> str:
    """A workforce name as given, stripped; a :class:`QueryError` on ``workforce`` for an
    empty one, a huge one or one with control characters (before any request)."""
    if not isinstance(name, str) or not name.strip():
        raise QueryError("workforce", "empty; leave the filter out to match every workforce")
    text = name.strip()
    if len(text) > defaults.MAX_FILTER_CHARS:
        raise QueryError(
            "workforce", f"too long ({len(text)} characters; at most {defaults.MAX_FILTER_CHARS})"
        )
    if any(ord(c) < 32 or ord(c) == 127 for c in text):
        raise QueryError("workforce", "contains control characters")
    return text


def resolve_workforce(name: str, snapshot: Snapshot, workforce_id: str | None) -> Resolution:
    """The id of the workforce named ``name`` among the recent runs' workforces.

    Raises :class:`QueryError` on ``workforce`` when two workforces have that name (it
    names both) or when ``workforce_id`` names another workforce.
    """
    text = check_workforce_name(name)
    matches = snapshot.workforces_named(text)
    if len(matches) > 1:
        listed = "; ".join(f"{w.id} ({w.detail}, {w.runs} recent runs)" for w in matches)
        raise QueryError(
            "workforce",
            f"{text!r} names {len(matches)} workforces among the {snapshot.scanned} most "
            f"recent runs: {listed}; pass workforce_id instead",
        )
    if matches:
        match = matches[0]
        if workforce_id is not None and workforce_id != match.id:
            raise QueryError(
                "workforce",
                f"{text!r} is workforce {match.id}, but workforce_id is {workforce_id!r}; "
                "pass one of them",
            )
        return Resolution(text, match.id, match.name, snapshot.scanned)
    names = sorted({w.name for w in snapshot.workforces.values() if w.name})
    return Resolution(text, None, None, snapshot.scanned, tuple(names), _close(text, names))
