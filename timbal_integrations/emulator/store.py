"""The emulator's query engine: filters, sorting and keyset pagination over a run set.

Built for paging through hundreds of thousands of runs cheaply:

- a :class:`Dataset` holds the runs in creation order (ascending ``(created_at, id)``)
  with a lookup by id and idempotency key; a :class:`RunStore` answers requests over the
  first ``n`` of them (the runs visible at one moment) in one state;
- each run's list-item JSON is serialized once, so a page is a join of ready-made bytes;
- every ``sort_by`` / ``sort_order`` pair gets, on first use, a total order (ties broken
  on ``id`` in the same direction; null ``duration_ms`` sorts **last in both orders**)
  and a rank per run;
- each distinct filter set is resolved once, from per-field inverted indexes and a
  bisect on creation time, into the sorted ranks of its matching runs, kept in a small
  LRU; a page is then a bisect plus a slice.

Page tokens are keyset positions (see :mod:`.tokens`): a token reused with other filters
or sort, edited, or not decodable is a :class:`BadRequest`. A live emulator serves a new
``RunStore`` whenever its runs change; a token issued by one resumes in the next right
after the last run served, by its sort value and id.
"""

from __future__ import annotations

import hashlib
import threading
from array import array
from bisect import bisect_left, bisect_right
from collections import OrderedDict
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any, Final

import orjson

from timbal_integrations.emulator.data import EXTRA_FIELDS, PREVIEW_FIELDS
from timbal_integrations.emulator.params import (
    EQ_FILTERS,
    SORT_FIELDS,
    SORT_ORDERS,
    BadRequest,
    ListParams,
    canonical_json,
    parse_created_at,
    parse_list_params,
)
from timbal_integrations.emulator.tokens import TokenCodec, comes_after

__all__ = [
    "SORT_FIELDS",
    "SORT_ORDERS",
    "BadRequest",
    "Dataset",
    "ListParams",
    "RunStore",
    "compact_json",
    "parse_list_params",
]

_CACHE_SIZE: Final = 48
_EMPTY: Final[Sequence[int]] = ()


def compact_json(value: Any) -> bytes:
    """``orjson.dumps`` into an exactly sized ``bytes``.

    orjson hands back its 4 KiB working buffer; a small document kept for long (a cached
    list item) would hold all of it, six times its size.
    """
    return bytes(memoryview(orjson.dumps(value)))


class Dataset:
    """Runs in creation order, with their lookup: what every state of an emulator shares.

    Treat it as immutable: a change makes a new one.
    """

    __slots__ = ("created_ms", "fingerprint", "ids", "lookup", "records")

    def __init__(self, runs: Iterable[Mapping[str, Any]]) -> None:
        """Index ``runs`` (``RunDetail``-shaped mappings, any order).

        Raises:
            ValueError: a run lacks a preview field, or ids or idempotency keys are not
                unique.
        """
        given = list(runs)
        for record in given:
            if not all(f in record for f in PREVIEW_FIELDS):
                missing = [f for f in PREVIEW_FIELDS if f not in record]
                raise ValueError(f"run {record.get('id')!r} lacks {', '.join(missing)}")
        keys = [(parse_created_at(r["created_at"]), r["id"]) for r in given]
        order = sorted(range(len(given)), key=keys.__getitem__)
        self._setup([given[i] for i in order], [keys[i][0] for i in order])

    @classmethod
    def presorted(cls, records: list[Any], created_ms: list[int]) -> Dataset:
        """A data set of runs already in ``(created_at, id)`` order, with their times."""
        dataset = cls.__new__(cls)
        dataset._setup(records, created_ms)
        return dataset

    def _setup(self, records: list[Mapping[str, Any]], created_ms: list[int]) -> None:
        self.records = records
        self.created_ms = created_ms
        self.ids: list[str] = [r["id"] for r in records]
        self.lookup: dict[str, int] = {}
        for i, record in enumerate(records):
            for key in (record["id"], record["idempotency_key"]):
                if self.lookup.setdefault(key, i) != i:
                    raise ValueError(f"duplicate run id or idempotency key {key!r}")
        self.fingerprint = hashlib.blake2b("\n".join(self.ids).encode(), digest_size=16).hexdigest()

    def __len__(self) -> int:
        return len(self.records)


class _Ordering:
    """A total order of the runs for one (sort_by, sort_order)."""

    __slots__ = ("order", "rank")

    def __init__(self, order: Sequence[int], n: int) -> None:
        self.order = array("l", order)  # rank -> run index
        self.rank = array("l", bytes(self.order.itemsize * n))  # run index -> rank
        for r, i in enumerate(self.order):
            self.rank[i] = r


class RunStore:
    """The runs visible at one moment, in one state, and the indexes that answer queries."""

    def __init__(
        self,
        runs: Iterable[Mapping[str, Any]],
        *,
        page_size: int = 50,
        extra_fields: bool = False,
    ) -> None:
        """Index ``runs`` (``RunDetail``-shaped mappings, any order); all are visible.

        Raises:
            ValueError: ``page_size`` < 1, a run lacks a preview field, or ids or
                idempotency keys are not unique.
        """
        if page_size < 1:
            raise ValueError("page_size must be >= 1")
        dataset = Dataset(runs)
        fields = PREVIEW_FIELDS + EXTRA_FIELDS if extra_fields else PREVIEW_FIELDS
        self._setup(
            dataset,
            dataset.records,
            page_size=page_size,
            fields=fields,
            tokens=TokenCodec(f"{dataset.fingerprint}:{fields!r}"),
            preview_cache=[None] * len(dataset),
        )

    @classmethod
    def snapshot(
        cls,
        dataset: Dataset,
        records: list[Mapping[str, Any]],
        *,
        page_size: int,
        fields: tuple[str, ...],
        tokens: TokenCodec,
        preview_cache: list[bytes | None],
        changed: Iterable[int] = (),
        render: Callable[[Mapping[str, Any], int], tuple[dict[str, Any], bool]] | None = None,
    ) -> RunStore:
        """A store over ``records``: the state of ``dataset``'s first ``len(records)`` runs.

        ``preview_cache`` holds the list-item JSON of ``dataset.records`` (by index); it is
        used, and filled, for every run whose record is the data set's own (not for those
        in ``changed``). ``render`` turns a record and the time of the request into the
        ``RunDetail`` served (and says whether that answer may be cached); without it the
        record is served as is.
        """
        store = cls.__new__(cls)
        store._setup(
            dataset,
            records,
            page_size=page_size,
            fields=fields,
            tokens=tokens,
            preview_cache=preview_cache,
            changed=changed,
            render=render,
        )
        return store

    def _setup(
        self,
        dataset: Dataset,
        records: list[Mapping[str, Any]],
        *,
        page_size: int,
        fields: tuple[str, ...],
        tokens: TokenCodec,
        preview_cache: list[bytes | None],
        changed: Iterable[int] = (),
        render: Callable[[Mapping[str, Any], int], tuple[dict[str, Any], bool]] | None = None,
    ) -> None:
        self.page_size = page_size
        self.extra_fields = fields != PREVIEW_FIELDS
        self.dataset = dataset
        self.tokens = tokens
        self._records = records
        n = self._n = len(records)
        self._created_ms = dataset.created_ms
        self._ids = dataset.ids
        self._lookup = dataset.lookup
        self._fields = fields
        self._render = render
        # List-item JSON, serialized on first use and then served as is. While the
        # records are the data set's own, the data set's cache is used directly;
        # otherwise it is copied and the changed runs are forgotten.
        self._shared: list[bytes | None] | None = None
        if records is dataset.records:
            self._preview_bytes = preview_cache
        else:
            self._preview_bytes = preview_cache[:n]
            for i in changed:
                if i < n:
                    self._preview_bytes[i] = None
            self._shared = preview_cache
        self._detail_bytes: OrderedDict[int, bytes] = OrderedDict()
        self._eq_indexes: dict[str, dict[Any, list[int]]] = {}
        self._metadata_index: dict[tuple[str, bytes], list[int]] | None = None
        self._roots_index: list[int] | None = None
        self._orderings: dict[tuple[str, str], _Ordering] = {}
        self._ranked_cache: OrderedDict[tuple[Any, ...], Sequence[int]] = OrderedDict()
        self._preview_dicts: list[dict[str, Any]] | None = None
        self._newest_first: list[Mapping[str, Any]] | None = None
        # Several servers (threads) may share a store: guard the lazy indexes and caches.
        self._lock = threading.RLock()

    def __len__(self) -> int:
        return self._n

    @property
    def fingerprint(self) -> str:
        """Identifies the data set and projection this store's page tokens belong to."""
        return self.tokens.scope

    # -- ground truth -------------------------------------------------------------------

    def records(self) -> list[Mapping[str, Any]]:
        """The runs as held (``RunDetail`` shapes), newest first; shared, treat as read-only."""
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

    def index_of(self, run_id: str) -> int | None:
        """The index of a visible run given its id or idempotency key, or None."""
        i = self._lookup.get(run_id)
        return i if i is not None and i < self._n else None

    def record(self, i: int) -> Mapping[str, Any]:
        """The record of the run at index ``i`` (creation order)."""
        return self._records[i]

    def _preview(self, i: int) -> dict[str, Any]:
        record = self._records[i]
        return {f: record[f] for f in self._fields if f in record}

    def _preview_json(self, i: int) -> bytes:
        body = self._preview_bytes[i]
        if body is None:
            body = self._preview_bytes[i] = compact_json(self._preview(i))
            if self._shared is not None and self._records[i] is self.dataset.records[i]:
                self._shared[i] = body
        return body

    # -- get one ------------------------------------------------------------------------

    def detail_dict(self, i: int, now_ms: int = 0) -> tuple[dict[str, Any], bool]:
        """The ``RunDetail`` served at ``now_ms`` for the run at index ``i``, and whether
        that answer may be cached."""
        record = self._records[i]
        if self._render is None:
            return dict(record), True
        return self._render(record, now_ms)

    def detail(self, run_id: str, now_ms: int = 0) -> bytes | None:
        """The ``RunDetail`` JSON of a run given its id or idempotency key, or None."""
        i = self.index_of(run_id)
        if i is None:
            return None
        with self._lock:
            body = self._detail_bytes.get(i)
            if body is not None:
                self._detail_bytes.move_to_end(i)
                return body
        detail, cacheable = self.detail_dict(i, now_ms)
        body = compact_json(detail)
        if cacheable:
            with self._lock:
                self._detail_bytes[i] = body
                if len(self._detail_bytes) > 1024:
                    self._detail_bytes.popitem(last=False)
        return body

    # -- list ---------------------------------------------------------------------------

    def list_page(self, params: ListParams) -> bytes:
        """The ``ListRunsResBody`` JSON of one page.

        Raises:
            BadRequest: the page token is malformed or was issued for another query.
        """
        sort_by = params.sort_by
        skey = (sort_by, params.sort_order)
        with self._lock:
            qhash = self.tokens.query_hash((params.filter_key(), sort_by, params.sort_order))
            ordering = self._ordering(skey)
            ranks = self._ranked(params.filter_key(), skey, ordering)
        start = 0
        if params.page_token is not None:
            position = self.tokens.decode(params.page_token, qhash, sort_by)
            start = self._start_after(position, sort_by, params.sort_order, ordering, ranks)
        stop = start + self.page_size
        order, previews, serialize = ordering.order, self._preview_bytes, self._preview_json
        items = b",".join(
            [previews[i] or serialize(i) for i in map(order.__getitem__, ranks[start:stop])]
        )
        token = b"null"
        if stop < len(ranks):
            last = order[ranks[stop - 1]]
            encoded = self.tokens.encode(qhash, self._sort_value(sort_by, last), self._ids[last])
            token = b'"' + encoded + b'"'
        return b'{"runs":[' + items + b'],"next_page_token":' + token + b"}"

    def _start_after(
        self,
        position: tuple[Any, str],
        sort_by: str,
        sort_order: str,
        ordering: _Ordering,
        ranks: Sequence[int],
    ) -> int:
        """Where in ``ranks`` the page after keyset ``position`` starts."""
        value, run_id = position
        i = self._lookup.get(run_id)
        if i is not None and i < self._n and self._sort_value(sort_by, i) == value:
            return bisect_right(ranks, ordering.rank[i])  # the run is where it was
        # The run vanished or its sort value moved: find the position by its key.
        desc = sort_order == "desc"
        order, ids = ordering.order, self._ids

        def after(rank: int) -> bool:
            j = order[rank]
            return comes_after(self._sort_value(sort_by, j), ids[j], position, desc)

        return bisect_left(ranks, True, key=after)

    def _sort_value(self, sort_by: str, i: int) -> Any:
        if sort_by == "id":
            return self._ids[i]
        if sort_by == "created_at":
            return self._created_ms[i]
        return self._records[i][sort_by]

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
                        (str(k), canonical_json(v)) for k, v in metadata.items()
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
        for name in EQ_FILTERS:
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
            lo = bisect_left(self._created_ms, params.from_ms, 0, self._n)
        if params.to_ms is not None:
            hi = bisect_left(self._created_ms, params.to_ms, 0, self._n)
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
