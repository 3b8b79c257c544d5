"""Reactions: users' thumbs up or down on a run, with what they wrote.

A run whose ``last_reaction_sentiment`` is ``X`` has one to three reactions, the latest
of which is ``X`` (earlier ones may disagree: a reviewer overruling the first user); a
run without a sentiment has none. Reactions come after the run ends: most within the
hour, some the next day, and about 8% three and a half to ten days later, later than a
sync's usual three-day lookback. Thumbs-down usually say what went wrong (naming the
error of a failed run); thumbs-up sometimes say thanks.

Everything is derived from ``(seed, run)``, so a run's reactions are the same whenever
they are asked for.
"""

from __future__ import annotations

import math
import random
from collections.abc import Mapping, Sequence
from typing import Any, Final, NamedTuple

from timbal_integrations.emulator.catalog import feedback_pool
from timbal_integrations.emulator.data import ulid

__all__ = ["Reaction", "added_reaction", "generate_reactions"]

_MINUTE_MS: Final = 60_000
_HOUR_MS: Final = 60 * _MINUTE_MS
_DAY_MS: Final = 24 * _HOUR_MS
# (cumulative probability, shortest delay, longest delay), drawn log-uniformly.
_DELAYS: Final[tuple[tuple[float, int, int], ...]] = (
    (0.55, _MINUTE_MS, _HOUR_MS),
    (0.80, _HOUR_MS, _DAY_MS),
    (0.92, _DAY_MS, 3 * _DAY_MS),
    (1.00, 3 * _DAY_MS + 12 * _HOUR_MS, 10 * _DAY_MS),
)
_ADDED_BIT: Final = 1 << 79  # added reactions sort after generated ones at the same ms


class Reaction(NamedTuple):
    """One reaction; :meth:`to_json` gives the API's ``Reaction`` shape."""

    at_ms: int
    id: str
    sentiment: str
    user: Mapping[str, Any]
    feedback: str | None

    def to_json(self) -> dict[str, Any]:
        """The reaction as the reactions endpoint serves it."""
        return {
            "id": self.id,
            "user": self.user,
            "sentiment": self.sentiment,
            "feedback": self.feedback,
            "created_at": self.at_ms,
        }


def generate_reactions(
    seed: int,
    run: Mapping[str, Any],
    finished_ms: int,
    users: Sequence[Mapping[str, Any]],
    *,
    latest_ms: int | None = None,
) -> tuple[Reaction, ...]:
    """The reactions of ``run`` (which finished at ``finished_ms``), oldest first.

    With ``latest_ms``, every reaction is squeezed into ``[finished_ms, latest_ms]`` (a
    frozen history has no future to put them in). Deterministic for the arguments.
    """
    sentiment = run.get("last_reaction_sentiment")
    if not isinstance(sentiment, str) or not sentiment:
        return ()
    rng = random.Random(f"timbal-emulator-reactions:{seed}:{run['id']}")
    rand = rng.random
    u = rand()
    count = 1 if u < 0.75 else 2 if u < 0.95 else 3
    times: list[int] = []
    t = finished_ms
    for _ in range(count):
        u = rand()
        for cumulative, low, high in _DELAYS:
            if u < cumulative:
                t += int(low * math.exp(rand() * math.log(high / low)))
                break
        times.append(t)
    if latest_ms is not None and times[-1] > latest_ms:
        room = max(0, latest_ms - finished_ms)
        times = [finished_ms + (x - finished_ms) * room // (times[-1] - finished_ms) for x in times]
    for k in range(1, count):  # strictly increasing, so the last one is the latest
        times[k] = max(times[k], times[k - 1] + 1)

    status = str(run.get("status"))
    detail = run.get("status_detail")
    error_kind = detail.get("reason") if isinstance(detail, Mapping) else None
    run_user = run.get("user")
    reactions: list[Reaction] = []
    for k, at in enumerate(times):
        last = k == count - 1
        mood = sentiment if last else ("positive" if rand() < 0.5 else "negative")
        if k == 0 and isinstance(run_user, Mapping) and rand() < 0.8:
            user: Mapping[str, Any] = run_user
        else:
            user = users[int(rand() * len(users))]
        feedback = None
        if rand() < (0.85 if mood == "negative" else 0.35):
            pool = feedback_pool(mood, status, run.get("workforce"), error_kind)
            feedback = pool[int(rand() * len(pool))]
        reactions.append(Reaction(at, ulid(at, rng.getrandbits(79)), mood, user, feedback))
    return tuple(reactions)


def added_reaction(
    seed: int,
    run_id: str,
    sequence: int,
    at_ms: int,
    sentiment: str,
    user: Mapping[str, Any],
    feedback: str | None,
) -> Reaction:
    """A reaction added through the API or a test hook (the ``sequence``-th on its run)."""
    rng = random.Random(f"timbal-emulator-added-reaction:{seed}:{run_id}:{sequence}")
    bits = _ADDED_BIT | (sequence % (1 << 38)) << 40 | rng.getrandbits(40)
    return Reaction(at_ms, ulid(at_ms, bits), sentiment, user, feedback)
