"""The emulator's query engine: filters, sorting and keyset pagination over a fixed run set.

Built for paging through hundreds of thousands of runs cheaply:

- runs are held in creation order (ascending ``(created_at, id)``); each run's list-item
  JSON is serialized once, so a page is a join of ready-made bytes;
- every ``sort_by`` / ``sort_order`` pair gets, on first use, a total order (ties broken
  on ``id`` in the same direction; null ``duration_ms`` sorts **last in both orders**)
  and a rank per run;
- each distinct filter set is resolved once, from per-field inverted indexes and a
  bisect on creation time, into the sorted ranks of its matching runs, kept in a small
  LRU; a page is then a bisect plus a slice.

Page tokens are opaque to clients: URL-safe base64 (unpadded) of the JSON
``{"v": 1, "q": <query hash>, "k": [<sort value>, <run id>]}``, where the query hash
binds the token to the normalized filters, the sort and the data set, and ``k`` is the
keyset position of the last run served. A token reused with other filters or sort, or
one that does not decode, is a :class:`BadRequest`.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import threading
from array import array
from bisect import bisect_left, bisect_right
from collections import OrderedDict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Final

import orjson

from timbal_integrations.emulator.data import EXTRA_FIELDS, PREVIEW_FIELDS, to_epoch_ms

__all__ = [
    "SORT_FIELDS",
    "SORT_ORDERS",
    "BadRequest",
    "ListParams",
    "RunStore",
    "parse_list_params",
]

SORT_FIELDS: Final[tuple[str, ...]] = (
    "id",
    "created_at",
    "duration_ms",
    "cost_usd",
    "cost_credits",
)
"""Accepted ``sort_by`` values."""

SORT_ORDERS: Final[tuple[str, ...]] = ("asc", "desc")
"""Accepted ``sort_order`` values."""

_EQ_FILTERS: Final[tuple[str, ...]] = ("user_id", "status", "sentiment", "group_id", "workforce_id")
_TRUE: Final = frozenset({"true", "1"})
_FALSE: Final = frozenset({"false", "0"})
_TOKEN_VERSION: Final = 1
_CACHE_SIZE: Final = 48
_EMPTY: Final[Sequence[int]] = ()


class BadRequest(Exception):
    """A request the API answers with 400; ``message`` names the offending parameter."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


@dataclass(frozen=True, slots=True)
class ListParams:
    """Normalized list-endpoint parameters (filters, sort and page token)."""

    user_id: str | None = None
    status: str | None = None
    sentiment: str | None = None
    group_id: str | None = None
    workforce_id: str | None = None
    rev: str | None = None
    from_ms: int | None = None
    to_ms: int | None = None
    metadata: tuple[tuple[str, bytes], ...] = ()
    roots: bool = False
    sort_by: str = "created_at"
    sort_order: str = "desc"
    page_token: str | None = None

    def filter_key(self) -> tuple[Any, ...]:
        """The filters alone, normalized, as a hashable key."""
        return (
            self.user_id,
            self.status,
            self.sentiment,
            self.group_id,
            self.workforce_id,
            self.rev,
            self.from_ms,
            self.to_ms,
            self.metadata,
            self.roots,
        )


def _int_param(name: str, raw: str) -> int:
    text = raw.strip()
    digits = text[1:] if text[:1] in ("+", "-") else text
    if not (digits.isascii() and digits.isdigit()):  # "¹".isdigit() is True, int("¹") fails
        raise BadRequest(f"invalid '{name}': expected epoch milliseconds (an integer), got {raw!r}")
    return int(text)


def parse_list_params(query: Mapping[str, str]) -> ListParams:
    """Validate and normalize the list endpoint's query parameters.

    Empty values count as absent. Unknown parameters are ignored.

    Raises:
        BadRequest: a parameter is malformed; the message names it.
    """

    def get(name: str) -> str | None:
        value = query.get(name)
        return value if value else None

    from_raw, to_raw = get("from"), get("to")
    from_ms = _int_param("from", from_raw) if from_raw is not None else None
    to_ms = _int_param("to", to_raw) if to_raw is not None else None

    metadata: tuple[tuple[str, bytes], ...] = ()
    metadata_raw = get("metadata")
    if metadata_raw is not None:
        try:
            parsed = orjson.loads(metadata_raw)
        except orjson.JSONDecodeError as exc:
            raise BadRequest(f"invalid 'metadata': not valid JSON ({exc})") from None
        if not isinstance(parsed, dict):
            raise BadRequest("invalid 'metadata': expected a JSON object")
        metadata = tuple(sorted((str(k), _canonical(v)) for k, v in parsed.items()))

    roots = False
    roots_raw = get("roots")
    if roots_raw is not None:
        lowered = roots_raw.strip().lower()
        if lowered in _TRUE:
            roots = True
        elif lowered not in _FALSE:
            raise BadRequest(f"invalid 'roots': expected true or false, got {roots_raw!r}")

    sort_by = get("sort_by") or "created_at"
    if sort_by not in SORT_FIELDS:
        raise BadRequest(
            f"invalid 'sort_by': expected one of {', '.join(SORT_FIELDS)}, got {sort_by!r}"
        )
    sort_order = get("sort_order") or "desc"
    if sort_order not in SORT_ORDERS:
        raise BadRequest(f"invalid 'sort_order': expected asc or desc, got {sort_order!r}")

    return ListParams(
        user_id=get("user_id"),
        status=get("status"),
        sentiment=get("sentiment"),
        group_id=get("group_id"),
        workforce_id=get("workforce_id"),
        rev=get("rev"),
        from_ms=from_ms,
        to_ms=to_ms,
        metadata=metadata,
        roots=roots,
        sort_by=sort_by,
        sort_order=sort_order,
        page_token=get("page_token"),
    )


def _canonical(value: Any) -> bytes:
    """JSON bytes that are equal exactly when two JSON values are equal (``2.0`` is ``2``)."""
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    return orjson.dumps(value, option=orjson.OPT_SORT_KEYS)


def _parse_created_at(value: str) -> int:
    parsed = datetime.fromisoformat(value)
    if parsed.tzinfo is None:
        raise ValueError(f"created_at without an offset: {value!r}")
    return to_epoch_ms(parsed)


class _Ordering:
    """A total order of the runs for one (sort_by, sort_order)."""

    __slots__ = ("order", "rank")

    def __init__(self, order: Sequence[int], n: int) -> None:
        self.order = array("l", order)  # rank -> run index
        self.rank = array("l", bytes(self.order.itemsize * n))  # run index -> rank
        for r, i in enumerate(self.order):
            self.rank[i] = r


class RunStore:
    """Immutable run data plus the indexes and caches that answer list and get requests."""

    def __init__(
        self,
        runs: Iterable[Mapping[str, Any]],
        *,
        page_size: int = 50,
        extra_fields: bool = False,
    ) -> None:
        """Index ``runs`` (``RunDetail``-shaped mappings, any order).

        Raises:
            ValueError: ``page_size`` < 1, a run lacks a preview field, or ids or
                idempotency keys are not unique.
        """
        if page_size < 1:
            raise ValueError("page_size must be >= 1")
        self.page_size = page_size
        self.extra_fields = extra_fields
        given = list(runs)
        for record in given:
            if not all(f in record for f in PREVIEW_FIELDS):
                missing = [f for f in PREVIEW_FIELDS if f not in record]
                raise ValueError(f"run {record.get('id')!r} lacks {', '.join(missing)}")
        keys = [(_parse_created_at(r["created_at"]), r["id"]) for r in given]
        order = sorted(range(len(given)), key=keys.__getitem__)
        self._records: list[Mapping[str, Any]] = [given[i] for i in order]
        self._created_ms: list[int] = [keys[i][0] for i in order]
        self._ids: list[str] = [keys[i][1] for i in order]
        n = self._n = len(order)
        del given, keys, order
        self._fields = PREVIEW_FIELDS + EXTRA_FIELDS if extra_fields else PREVIEW_FIELDS
        # List-item JSON, serialized on first use and then served as is.
        self._preview_bytes: list[bytes | None] = [None] * n

        self._lookup: dict[str, int] = {}
        for i, record in enumerate(self._records):
            for key in (record["id"], record["idempotency_key"]):
                if self._lookup.setdefault(key, i) != i:
                    raise ValueError(f"duplicate run id or idempotency key {key!r}")

        digest = hashlib.blake2b("\n".join(self._ids).encode(), digest_size=16)
        digest.update(repr(self._fields).encode())
        self.fingerprint = digest.hexdigest()
        self._detail_bytes: dict[int, bytes] = {}
        self._eq_indexes: dict[str, dict[Any, list[int]]] = {}
        self._metadata_index: dict[tuple[str, bytes], list[int]] | None = None
        self._roots_index: list[int] | None = None
        self._orderings: dict[tuple[str, str], _Ordering] = {}
        self._ranked_cache: OrderedDict[tuple[Any, ...], Sequence[int]] = OrderedDict()
        self._hash_cache: dict[tuple[Any, ...], str] = {}
        self._preview_dicts: list[dict[str, Any]] | None = None
        self._newest_first: list[Mapping[str, Any]] | None = None
        # Several servers (threads) may share a store: guard the lazy indexes and caches.
        self._lock = threading.RLock()

    def __len__(self) -> int:
        return self._n

    # -- ground truth -------------------------------------------------------------------

    def records(self) -> list[Mapping[str, Any]]:
        """The runs as given (``RunDetail`` shapes), newest first; shared, treat as read-only."""
        with self._lock:
            if self._newest_first is None:
                self._newest_first = self._records[::-1]
            return self._newest_first

    def previews(self) -> list[dict[str, Any]]:
        """Each run's list item, newest first, exactly as the list endpoint serves it.

        Built on first use and shared (nested dicts too): treat it as read-only.
        """
        with self._lock:
            if self._preview_dicts is None:
                self._preview_dicts = [self._preview(i) for i in range(self._n - 1, -1, -1)]
            return self._preview_dicts

    def _preview(self, i: int) -> dict[str, Any]:
        record = self._records[i]
        return {f: record[f] for f in self._fields if f in record}

    def _preview_json(self, i: int) -> bytes:
        body = self._preview_bytes[i]
        if body is None:
            body = self._preview_bytes[i] = orjson.dumps(self._preview(i))
        return body

    # -- get one ------------------------------------------------------------------------

    def detail(self, run_id: str) -> bytes | None:
        """The ``RunDetail`` JSON of a run given its id or idempotency key, or None."""
        i = self._lookup.get(run_id)
        if i is None:
            return None
        with self._lock:
            body = self._detail_bytes.get(i)
            if body is None:
                body = self._detail_bytes[i] = orjson.dumps(self._records[i])
            return body

    # -- list ---------------------------------------------------------------------------

    def list_page(self, params: ListParams) -> bytes:
        """The ``ListRunsResBody`` JSON of one page.

        Raises:
            BadRequest: the page token is malformed or was issued for another query.
        """
        skey = (params.sort_by, params.sort_order)
        with self._lock:
            qhash = self._query_hash(params)
            ordering = self._ordering(skey)
            ranks = self._ranked(params.filter_key(), skey, ordering)
        start = 0
        if params.page_token is not None:
            last = self._decode_token(params.page_token, qhash, params.sort_by)
            start = bisect_right(ranks, ordering.rank[last])
        stop = start + self.page_size
        order, previews, serialize = ordering.order, self._preview_bytes, self._preview_json
        items = b",".join(
            [previews[i] or serialize(i) for i in map(order.__getitem__, ranks[start:stop])]
        )
        token = b"null"
        if stop < len(ranks):
            token = b'"' + self._encode_token(qhash, params.sort_by, order[ranks[stop - 1]]) + b'"'
        return b'{"runs":[' + items + b'],"next_page_token":' + token + b"}"

    def _query_hash(self, params: ListParams) -> str:
        key = (params.filter_key(), params.sort_by, params.sort_order)
        cached = self._hash_cache.get(key)
        if cached is None:
            digest = hashlib.blake2b(repr(key).encode(), digest_size=9)
            digest.update(self.fingerprint.encode())
            cached = base64.urlsafe_b64encode(digest.digest()).decode()
            if len(self._hash_cache) > 4096:
                self._hash_cache.clear()
            self._hash_cache[key] = cached
        return cached

    def _sort_value(self, sort_by: str, i: int) -> Any:
        if sort_by == "id":
            return self._ids[i]
        if sort_by == "created_at":
            return self._created_ms[i]
        return self._records[i][sort_by]

    def _encode_token(self, qhash: str, sort_by: str, i: int) -> bytes:
        payload = orjson.dumps(
            {"v": _TOKEN_VERSION, "q": qhash, "k": [self._sort_value(sort_by, i), self._ids[i]]}
        )
        return base64.urlsafe_b64encode(payload).rstrip(b"=")

    def _decode_token(self, token: str, qhash: str, sort_by: str) -> int:
        invalid = BadRequest("invalid 'page_token': malformed or not issued by this server")
        try:
            raw = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4))
            payload = orjson.loads(raw)
        except (binascii.Error, ValueError):
            raise invalid from None
        if (
            not isinstance(payload, dict)
            or payload.get("v") != _TOKEN_VERSION
            or not isinstance(payload.get("q"), str)
            or not isinstance(payload.get("k"), list)
            or len(payload["k"]) != 2
        ):
            raise invalid
        if payload["q"] != qhash:
            raise BadRequest(
                "invalid 'page_token': it was issued for different filters or sort; "
                "reuse a page_token only with the query that returned it"
            )
        value, run_id = payload["k"]
        i = self._lookup.get(run_id) if isinstance(run_id, str) else None
        if i is None or self._ids[i] != run_id or self._sort_value(sort_by, i) != value:
            raise invalid
        return i

    # -- indexes ------------------------------------------------------------------------

    def _ordering(self, skey: tuple[str, str]) -> _Ordering:
        ordering = self._orderings.get(skey)
        if ordering is None:
            sort_by, sort_order = skey
            n, ids = self._n, self._ids
            desc = sort_order == "desc"
            if sort_by == "created_at":
                # Runs are held in (created_at, id) order already.
                order: Sequence[int] = range(n - 1, -1, -1) if desc else range(n)
            else:
                values = [self._sort_value(sort_by, i) for i in range(n)]
                present = [i for i in range(n) if values[i] is not None]
                nulls = [i for i in range(n) if values[i] is None]
                present.sort(key=lambda i: (values[i], ids[i]), reverse=desc)
                nulls.sort(key=ids.__getitem__, reverse=desc)
                order = present + nulls  # nulls last in both orders
            ordering = self._orderings[skey] = _Ordering(order, n)
        return ordering

    def _eq_index(self, name: str) -> dict[Any, list[int]]:
        index = self._eq_indexes.get(name)
        if index is None:
            index = {}
            for i, record in enumerate(self._records):
                if name == "user_id":
                    value = record["user"]["id"]
                elif name == "workforce_id":
                    value = record["workforce"]["id"]
                elif name == "sentiment":
                    value = record.get("last_reaction_sentiment")
                else:
                    value = record.get(name)
                index.setdefault(value, []).append(i)
            self._eq_indexes[name] = index
        return index

    def _metadata_postings(self) -> dict[tuple[str, bytes], list[int]]:
        if self._metadata_index is None:
            index: dict[tuple[str, bytes], list[int]] = {}
            canonical: dict[int, list[tuple[str, bytes]]] = {}  # shared dicts: encode once
            for i, record in enumerate(self._records):
                metadata = record.get("metadata")
                if not isinstance(metadata, dict):
                    continue
                pairs = canonical.get(id(metadata))
                if pairs is None:
                    pairs = canonical[id(metadata)] = [
                        (str(k), _canonical(v)) for k, v in metadata.items()
                    ]
                for pair in pairs:
                    index.setdefault(pair, []).append(i)
            self._metadata_index = index
        return self._metadata_index

    def _roots(self) -> list[int]:
        if self._roots_index is None:
            self._roots_index = [
                i for i, record in enumerate(self._records) if record.get("parent_id") is None
            ]
        return self._roots_index

    def _matching(self, params_key: tuple[Any, ...]) -> Sequence[int]:
        """Indexes (ascending) of the runs matching a filter key."""
        params = ListParams(*params_key)
        postings: list[Sequence[int]] = []
        for name in _EQ_FILTERS:
            value = getattr(params, name)
            if value is not None:
                postings.append(self._eq_index(name).get(value, _EMPTY))
        if params.rev is not None:
            revs = self._eq_index("rev")
            postings.append(sorted(revs.get(params.rev, []) + revs.get(None, [])))
        if params.metadata:
            index = self._metadata_postings()
            postings.extend(index.get(pair, _EMPTY) for pair in params.metadata)
        if params.roots:
            postings.append(self._roots())

        lo, hi = 0, self._n
        if params.from_ms is not None:
            lo = bisect_left(self._created_ms, params.from_ms)
        if params.to_ms is not None:
            hi = bisect_left(self._created_ms, params.to_ms)
        if not postings:
            return range(lo, max(lo, hi))
        postings.sort(key=len)
        shortest, others = postings[0], [set(p) for p in postings[1:]]
        return [i for i in shortest if lo <= i < hi and all(i in s for s in others)]

    def _ranked(
        self, fkey: tuple[Any, ...], skey: tuple[str, str], ordering: _Ordering
    ) -> Sequence[int]:
        """Ascending ranks (in ``ordering``) of the runs matching ``fkey``, cached."""
        key = (fkey, skey)
        cached = self._ranked_cache.get(key)
        if cached is not None:
            self._ranked_cache.move_to_end(key)
            return cached
        matching = self._matching(fkey)
        ranked: Sequence[int]
        n = self._n
        if isinstance(matching, range) and len(matching) == n:
            ranked = range(n)
        elif isinstance(matching, range) and skey[0] == "created_at":
            # Runs are held in created_at order: a time window is a contiguous rank range.
            lo, hi = matching.start, matching.stop
            ranked = range(n - hi, n - lo) if skey[1] == "desc" else matching
        else:
            rank = ordering.rank
            ranked = array("l", sorted(rank[i] for i in matching))
        self._ranked_cache[key] = ranked
        if len(self._ranked_cache) > _CACHE_SIZE:
            self._ranked_cache.popitem(last=False)
        return ranked
