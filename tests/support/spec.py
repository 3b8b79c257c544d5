"""The bundled OpenAPI spec as jsonschema validators, shared by test folders.

The emulator's copy of the spec (``timbal_integrations/emulator/openapi-runs.json``) is
the shared spec plus ``TimbalTrace``, ``TimbalSpan`` and ``TimbalRunStatus`` (what
Timbal's SDK records in ``RunDetail.trace`` and ``status_detail``).
"""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import jsonschema

import timbal_integrations.emulator

__all__ = [
    "DETAIL_VALIDATOR",
    "ENVELOPE_VALIDATOR",
    "ERROR_VALIDATOR",
    "LIST_VALIDATOR",
    "REACTIONS_VALIDATOR",
    "REACTION_VALIDATOR",
    "SCHEMAS",
    "SPEC",
    "STATUS_VALIDATOR",
    "TRACE_VALIDATOR",
    "check_detail_body",
    "epoch_ms",
]

SPEC_PATH = Path(timbal_integrations.emulator.__file__).parent / "openapi-runs.json"
SPEC: dict[str, Any] = json.loads(SPEC_PATH.read_text())
SCHEMAS: dict[str, Any] = SPEC["components"]["schemas"]

_RFC3339 = re.compile(r"^\d{4}-\d{2}-\d{2}[Tt]\d{2}:\d{2}:\d{2}(\.\d+)?([Zz]|[+-]\d{2}:\d{2})$")
_FORMATS = jsonschema.FormatChecker()


@_FORMATS.checks("date-time", raises=ValueError)
def _is_date_time(value: object) -> bool:
    """RFC 3339 ``date-time`` (jsonschema's own check needs an optional dependency)."""
    if not isinstance(value, str):
        return True
    if not _RFC3339.match(value):
        raise ValueError(f"not an RFC 3339 date-time: {value!r}")
    datetime.fromisoformat(value.replace("z", "Z"))
    return True


def _validator(name: str) -> jsonschema.Draft202012Validator:
    schema = {"$ref": f"#/components/schemas/{name}", "components": SPEC["components"]}
    jsonschema.Draft202012Validator.check_schema(schema)
    return jsonschema.Draft202012Validator(schema, format_checker=_FORMATS)


LIST_VALIDATOR = _validator("ListRunsResBody")
DETAIL_VALIDATOR = _validator("RunDetail")
REACTIONS_VALIDATOR = _validator("ListReactionsResBody")
REACTION_VALIDATOR = _validator("Reaction")
# Not in the public spec (it types them as untyped objects): what Timbal's SDK records.
TRACE_VALIDATOR = _validator("TimbalTrace")
STATUS_VALIDATOR = _validator("TimbalRunStatus")
# Validating a page with jsonschema costs ~12 ms and the same runs come back page after
# page: a page holding only runs already seen valid has just its envelope checked.
_ENVELOPE = json.loads(json.dumps(SCHEMAS["ListRunsResBody"]))
_ENVELOPE["properties"]["runs"]["items"] = {"type": "object"}
ENVELOPE_VALIDATOR = jsonschema.Draft202012Validator(_ENVELOPE, format_checker=_FORMATS)
ERROR_VALIDATOR = jsonschema.Draft202012Validator(
    {
        "type": "object",
        "required": ["message"],
        "properties": {"message": {"type": "string", "minLength": 1}},
    }
)
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def epoch_ms(created_at: str) -> int:
    """An API ``created_at`` as epoch milliseconds (exact, no float rounding)."""
    return (datetime.fromisoformat(created_at) - _EPOCH) // timedelta(milliseconds=1)


def check_detail_body(body: Any) -> None:
    """Validate a get-run body: ``RunDetail``, and its trace and status_detail shapes."""
    DETAIL_VALIDATOR.validate(body)
    if body.get("trace") is not None:
        TRACE_VALIDATOR.validate(body["trace"])
    if body.get("status_detail") is not None:
        STATUS_VALIDATOR.validate(body["status_detail"])
