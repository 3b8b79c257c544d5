"""2xx bodies into what the clients return, checked against the API's schema (sans-I/O).

A list page as models (:func:`runs_page`) or as the server's dicts (:func:`raw_page`,
the fast path of exports), one run's detail, a page of a run's reactions. A body that
is not what the API promises raises
:class:`~timbal_integrations.errors.ResponseValidationError` (:func:`invalid` words it);
a next page token longer than ``Bounds.max_page_token_chars`` raises
:class:`~timbal_integrations.errors.PaginationLimitError` (:func:`check_next_token`).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Protocol, TypeVar

from pydantic_core import ValidationError

from .._pages import RawPage, parse_raw_page
from ..errors import PaginationLimitError, ResponseValidationError
from ..limits import Bounds
from ._body import Reply
from ._checks import token_chars

if TYPE_CHECKING:  # loaded when first needed: an export never builds these models
    from ..models import ReactionsPage, RunDetail, RunsPage

__all__ = ["check_next_token", "invalid", "raw_page", "reactions_page", "run_detail", "runs_page"]


class _Paged(Protocol):
    @property
    def next_page_token(self) -> str | None: ...


_PagedT = TypeVar("_PagedT", bound=_Paged)


def invalid(response: Reply, path: str, error: ValidationError) -> ResponseValidationError:
    """The error for a 2xx body that is not what the API promises."""
    first = error.errors()[0]
    if first["type"] == "json_invalid":
        kind = response.headers.get("content-type", "no content type")
        size = len(response.content)
        what = "an empty body" if size == 0 else f"{size} bytes of {kind}"
        return ResponseValidationError(
            f"GET {path} answered {response.status_code} with {what}, not JSON"
        )
    where = ".".join(str(p) for p in first["loc"]) or "body"
    return ResponseValidationError(
        f"GET {path} returned a body that does not match the API schema: "
        f"{where}: {first['msg']} ({error.error_count()} problem(s))"
    )


def check_next_token(token: str | None, path: str, bounds: Bounds) -> None:
    """Refuse a next page token longer than the bound: the server's, not the caller's,
    fault (and sending it back could not work)."""
    bound = bounds.max_page_token_chars
    if token is not None and token_chars(token) > bound:
        raise PaginationLimitError(
            f"GET {path} returned a next_page_token of {token_chars(token):,} characters "
            f"(percent-encoded), over the {bound:,} a page token may have "
            "(Bounds.max_page_token_chars); the server's pagination is broken",
            setting="max_page_token_chars",
            limit=bound,
        )


def _page(
    validate: Callable[[bytes], _PagedT], response: Reply, path: str, bounds: Bounds
) -> _PagedT:
    """A page read by ``validate``, its next page token within the bound."""
    try:
        page = validate(response.content)
    except ValidationError as error:
        raise invalid(response, path, error) from None
    check_next_token(page.next_page_token, path, bounds)
    return page


def runs_page(response: Reply, path: str, bounds: Bounds) -> RunsPage:
    """A list page as models."""
    # Validating straight from bytes (pydantic-core's parser) is the fast path: about
    # 40% cheaper per run than json.loads followed by model_validate.
    from ..models import RunsPage

    return _page(RunsPage.model_validate_json, response, path, bounds)


def raw_page(response: Reply, path: str, bounds: Bounds) -> RawPage:
    """A list page as the server's dicts, checked against the schema."""
    return _page(parse_raw_page, response, path, bounds)


def run_detail(response: Reply, path: str) -> RunDetail:
    """One run's detail as a model."""
    from ..models import RunDetail

    try:
        return RunDetail.model_validate_json(response.content)
    except ValidationError as error:
        raise invalid(response, path, error) from None


def reactions_page(response: Reply, path: str, bounds: Bounds) -> ReactionsPage:
    """A page of a run's reactions as models (its next page token bounded like a list
    page's)."""
    from ..models import ReactionsPage

    return _page(ReactionsPage.model_validate_json, response, path, bounds)
