"""The flat record of a run: one table of columns, from which every flat form derives.

CSV and Parquet exports, :meth:`Run.to_record <timbal_integrations.models.Run.to_record>`,
the Parquet schema and the column list of :data:`RECORD_FIELDS` are all read off
:data:`COLUMNS`. A column says where its value is in the run dict the API sends, its
Arrow type and nullability, and how CSV spells it. ``created_at`` is the one column
whose value is not the server's string but the run's parsed time (an aware UTC
datetime): CSV writes it ``YYYY-MM-DDTHH:MM:SS.ffffffZ``, Parquet as
``timestamp[us, tz=UTC]`` (epoch microseconds in the spool).

The inverse conversions read a flat record back (a dataset that is merged and rewritten,
as a sync does): :func:`csv_values` turns a CSV row's cells into the column values, and
:func:`record_from_row` a flat row into the run dict it was read from (the columns'
fields only). ``record_row(record_from_row(row), row[CREATED_AT]) == row``.

This module imports nothing heavy (no pydantic models, no pyarrow): the export path and
``from timbal_integrations import RECORD_FIELDS`` load it alone.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, Final

__all__ = [
    "COLUMNS",
    "CREATED_AT",
    "CSV_SAFE_PREFIXES",
    "RECORD_FIELDS",
    "SOURCE_KEYS",
    "Column",
    "arrow_schema",
    "csv_row",
    "csv_safe_cell",
    "csv_values",
    "iso_us",
    "micros",
    "record_from_row",
    "record_row",
]

_EPOCH: Final = datetime(1970, 1, 1, tzinfo=UTC)
_ONE_US: Final = timedelta(microseconds=1)


def micros(value: datetime) -> int:
    """Epoch microseconds of an aware datetime (the spool's and Parquet's form)."""
    return (value - _EPOCH) // _ONE_US


def iso_us(value: datetime) -> str:
    """The stable CSV spelling of a time: microseconds, UTC, ``Z``."""
    return value.astimezone(UTC).isoformat(timespec="microseconds")[:-6] + "Z"


def _arrow_type(pa: Any, name: str) -> Any:
    if name == "timestamp":
        return pa.timestamp("us", tz="UTC")
    return getattr(pa, name)()


@dataclass(frozen=True, slots=True)
class Column:
    """One column of the flat record.

    ``path`` locates the value in the run dict (``("user", "id")`` is
    ``run["user"]["id"]``); an ``optional`` value may be absent or null (``None``
    then). ``arrow`` is the Arrow type (``string``, ``int64``, ``float64`` or
    ``timestamp``, meaning microseconds in UTC) and ``nullable`` its Parquet
    nullability. ``csv`` spells a value in CSV (``None``: as the csv module does, an
    empty cell for a null). ``time``: the value is the run's parsed ``created_at``.
    """

    name: str
    path: tuple[str, ...]
    arrow: str = "string"
    nullable: bool = True
    optional: bool = False
    csv: Callable[[Any], Any] | None = None
    time: bool = False

    def from_csv(self, cell: str) -> Any:
        """The value a CSV cell written by :func:`csv_row` holds: ``created_at`` an aware
        UTC datetime, numbers by the Arrow type, an optional column's empty cell None.

        Raises ``ValueError`` for a cell that is not of the column's type.
        """
        if self.time:
            return datetime.fromisoformat(cell).astimezone(UTC)
        if self.optional and cell == "":
            return None
        if self.arrow == "int64":
            return int(cell)
        if self.arrow == "float64":
            return float(cell)
        return cell

    def arrow_type(self, pa: Any) -> Any:
        """This column's ``pyarrow`` type (``pa`` is the pyarrow module)."""
        return _arrow_type(pa, self.arrow)

    def expression(self, parents: Mapping[str, str]) -> str:
        """Python reading this column's value from ``run`` (``parents``: the names the
        required nested dicts are bound to)."""
        if self.time:
            return "created"
        head = self.path[0]
        if len(self.path) == 1:
            return f"get({head!r})" if self.optional else f"run[{head!r}]"
        if self.optional:
            return f"(get({head!r}) or {{}}).get({self.path[1]!r})"
        return f"{parents[head]}[{self.path[1]!r}]"


def _required(name: str, *path: str, arrow: str = "string", nullable: bool = True) -> Column:
    return Column(name, path or (name,), arrow=arrow, nullable=nullable)


def _optional(name: str, *, arrow: str = "string") -> Column:
    return Column(name, (name,), arrow=arrow, optional=True)


COLUMNS: Final[tuple[Column, ...]] = (
    _required("id", nullable=False),
    _required("idempotency_key", nullable=False),
    Column("created_at", ("created_at",), arrow="timestamp", nullable=False, csv=iso_us, time=True),
    _required("status", nullable=False),
    _optional("duration_ms", arrow="int64"),
    _required("cost_usd", arrow="float64"),
    _required("cost_credits", arrow="float64"),
    _required("user_id", "user", "id"),
    _required("user_name", "user", "name"),
    _required("user_email", "user", "email"),
    _required("workforce_id", "workforce", "id"),
    _required("workforce_name", "workforce", "name"),
    _required("workforce_type", "workforce", "type"),
    _optional("group_id"),
    _optional("parent_id"),
    _optional("last_reaction_sentiment"),
)
"""The columns of the flat record, in order."""

RECORD_FIELDS: Final[tuple[str, ...]] = tuple(column.name for column in COLUMNS)
"""The column order of the flat record form (CSV, Parquet)."""

CREATED_AT: Final = next(i for i, column in enumerate(COLUMNS) if column.time)
"""The index of the ``created_at`` column."""

SOURCE_KEYS: Final[set[str]] = {column.path[0] for column in COLUMNS}
"""The run dict's top-level keys the record reads."""

_CSV: Final = tuple((i, column.csv) for i, column in enumerate(COLUMNS) if column.csv is not None)
_TEXT: Final = tuple(
    i for i, column in enumerate(COLUMNS) if column.arrow == "string" and not column.time
)

CSV_SAFE_PREFIXES: Final = ("=", "+", "-", "@", "\t", "\r")
"""The first characters that make a spreadsheet read a cell as a formula (OWASP's list)."""


def csv_safe_cell(value: Any) -> Any:
    """A text cell made inert in a spreadsheet: one starting with ``=``, ``+``, ``-``,
    ``@``, a tab or a carriage return gets a ``'`` before it (``=1+1`` becomes ``'=1+1``);
    any other value is returned unchanged."""
    if isinstance(value, str) and value.startswith(CSV_SAFE_PREFIXES):
        return "'" + value
    return value


def _compile_row() -> Callable[[Mapping[str, Any], Any], list[Any]]:
    """:func:`record_row`, compiled from :data:`COLUMNS` as dataclasses compile
    ``__init__``: one list display of subscripts, about 3x faster than calling a getter
    per column (the row is built for every run of a CSV or Parquet export)."""
    nested = sorted({c.path[0] for c in COLUMNS if len(c.path) > 1 and not c.optional})
    parents = {head: f"_p{i}" for i, head in enumerate(nested)}
    source = "\n".join(
        [
            "def record_row(run, created):",
            "    get = run.get",
            *(f"    {name} = run[{head!r}]" for head, name in parents.items()),
            f"    return [{', '.join(c.expression(parents) for c in COLUMNS)}]",
        ]
    )
    namespace: dict[str, Any] = {}
    exec(source, namespace)  # noqa: S102 - the source is built from COLUMNS above, nothing else
    row: Callable[[Mapping[str, Any], Any], list[Any]] = namespace["record_row"]
    row.__module__ = __name__
    row.__doc__ = (
        "The flat record of a run dict as a list in column order, ``created`` in the "
        "``created_at`` slot (a datetime, epoch microseconds... as the caller needs)."
    )
    return row


record_row: Final = _compile_row()
"""``record_row(run, created)``: the flat record of a run dict as a list in column
order, ``created`` in the ``created_at`` slot (as the caller needs it: a datetime, epoch
microseconds...)."""


def csv_row(run: Mapping[str, Any], created: datetime, *, safe: bool = False) -> list[Any]:
    """The flat record as CSV writes it (each column spelled by its ``csv``); ``safe``:
    text columns pass through :func:`csv_safe_cell` (numbers and times never need to)."""
    row = record_row(run, created)
    for index, spell in _CSV:
        row[index] = spell(row[index])
    if safe:
        for index in _TEXT:
            row[index] = csv_safe_cell(row[index])
    return row


def csv_values(cells: Sequence[str]) -> list[Any]:
    """A CSV row's cells (column order) read back as the flat record's values.

    Raises ``ValueError`` naming the column when a cell is not of its type, or when the
    row does not have one cell a column.
    """
    if len(cells) != len(COLUMNS):
        raise ValueError(f"{len(cells)} cells, expected {len(COLUMNS)}")
    values = []
    for column, cell in zip(COLUMNS, cells, strict=True):
        try:
            values.append(column.from_csv(cell))
        except ValueError:
            raise ValueError(f"{column.name}: {cell[:40]!r} is not a {column.arrow}") from None
    return values


def _compile_from_row() -> Callable[[Sequence[Any]], dict[str, Any]]:
    """:func:`record_from_row`, compiled from :data:`COLUMNS` like :func:`record_row`: one
    dict display (a sync reads every run of the partitions it merges back with it)."""
    values: dict[str, Any] = {}  # a field's expression, or a nested dict's expressions
    for i, column in enumerate(COLUMNS):
        head, *nested = column.path
        if nested:
            values.setdefault(head, {})[nested[0]] = f"row[{i}]"
        else:
            values[head] = f"row[{i}]"

    def display(value: Any) -> str:
        if isinstance(value, str):
            return value
        return "{" + ", ".join(f"{key!r}: {display(v)}" for key, v in value.items()) + "}"

    source = f"def record_from_row(row):\n    return {display(values)}"
    namespace: dict[str, Any] = {}
    exec(source, namespace)  # noqa: S102 - the source is built from COLUMNS above, nothing else
    function: Callable[[Sequence[Any]], dict[str, Any]] = namespace["record_from_row"]
    function.__module__ = __name__
    function.__doc__ = (
        "The run dict a flat row (column order) was made from, with the columns' fields "
        "only: nested as the API sends it, ``created_at`` holding the row's value as is."
    )
    return function


record_from_row: Final = _compile_from_row()
"""``record_from_row(row)``: the run dict a flat row (column order) was made from, with
the columns' fields only: nested as the API sends it (``user``, ``workforce``),
``created_at`` holding the row's ``created_at`` value as it is."""


def arrow_schema(pa: Any) -> Any:
    """The Arrow schema of the flat record (``pa`` is the pyarrow module)."""
    return pa.schema(
        [
            pa.field(column.name, column.arrow_type(pa), nullable=column.nullable)
            for column in COLUMNS
        ]
    )
