"""filter_fields: how a front end derives its filter fields from FILTER_NAMES."""

from __future__ import annotations

import pytest

from timbal_integrations import FILTER_NAMES, RunQuery
from timbal_integrations.filters import filter_fields


def test_every_filter_under_its_own_name_by_default() -> None:
    fields = filter_fields()
    assert list(fields) == list(FILTER_NAMES)
    assert all(name == field for name, field in fields.items())


def test_rename_and_without_keep_the_order() -> None:
    fields = filter_fields(without=("sort_by", "sort_order"), rename={"roots": "roots_only"})
    assert list(fields) == [n for n in FILTER_NAMES if n not in ("sort_by", "sort_order")]
    assert fields["roots"] == "roots_only"
    assert list(fields.values())[-1] == "roots_only"


def test_fields_round_trip_into_a_query() -> None:
    fields = filter_fields(rename={"roots": "roots_only"})

    class Holder:
        status = "error"
        roots_only = "true"

    values = {name: getattr(Holder, field, None) for name, field in fields.items()}
    assert RunQuery.from_filters(values) == RunQuery(status="error", roots=True)


@pytest.mark.parametrize(
    ("without", "rename"),
    [(("sort",), None), ((), {"root": "roots_only"})],
)
def test_a_name_that_is_not_a_filter_is_a_value_error(
    without: tuple[str, ...], rename: dict[str, str] | None
) -> None:
    with pytest.raises(ValueError, match="is not a filter"):
        filter_fields(without=without, rename=rename)


def test_two_filters_on_one_field_is_a_value_error() -> None:
    with pytest.raises(ValueError, match="share a field"):
        filter_fields(rename={"roots": "status"})
