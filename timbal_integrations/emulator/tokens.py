"""Opaque page tokens: keyset positions, bound to their query and signed.

A token is URL-safe base64 (unpadded) of the JSON
``{"v": 2, "q": <query hash>, "k": [<sort value>, <id>], "s": <signature>}``:

- ``q`` binds the token to the normalized filters and sort it was issued for (and to the
  emulator's data set), so a token reused with another query is a 400 that says so;
- ``k`` is the keyset position of the last item served: the next page starts right after
  it, wherever that item is now, so tokens stay valid while a live emulator's runs
  change, appear or vanish between two requests (as with the real service's cursors);
- ``s`` is a keyed hash of ``q`` and ``k``: a token edited by hand is a 400.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
from typing import Any, Final

import orjson

from timbal_integrations.emulator.params import BadRequest

__all__ = ["TokenCodec", "comes_after"]

_VERSION: Final = 2
_INVALID: Final = "invalid 'page_token': malformed or not issued by this server"
_VALUE_TYPES: Final[dict[str, tuple[type, ...]]] = {
    "id": (str,),
    "created_at": (int,),
    "duration_ms": (int, type(None)),
    "cost_usd": (int, float),
    "cost_credits": (int, float),
}


class TokenCodec:
    """Issues and checks the page tokens of one emulator data set (``scope``)."""

    def __init__(self, scope: str) -> None:
        """Tokens of different scopes never validate against each other."""
        self.scope = scope
        self._key = hashlib.blake2b(scope.encode(), digest_size=32).digest()
        self._hashes: dict[Any, str] = {}

    def query_hash(self, key: Any) -> str:
        """A short hash of a query (any hashable with a stable ``repr``) in this scope."""
        cached = self._hashes.get(key)
        if cached is None:
            digest = hashlib.blake2b(repr(key).encode(), digest_size=9, key=self._key)
            cached = base64.urlsafe_b64encode(digest.digest()).decode()
            if len(self._hashes) > 4096:
                self._hashes.clear()
            self._hashes[key] = cached
        return cached

    def encode(self, qhash: str, value: Any, item_id: str) -> bytes:
        """The token of the position just after ``(value, item_id)`` for query ``qhash``."""
        k = orjson.dumps([value, item_id])
        payload = b'{"v":2,"q":"%s","k":%s,"s":"%s"}' % (qhash.encode(), k, self._sign(qhash, k))
        return base64.urlsafe_b64encode(payload).rstrip(b"=")

    def decode(self, token: str, qhash: str, kind: str) -> tuple[Any, str]:
        """The ``(value, id)`` position a token carries, checked against its query.

        ``kind`` is the sort field (or ``reactions``) whose value type the position has.

        Raises:
            BadRequest: the token is malformed, was edited, or belongs to another query.
        """
        try:
            raw = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4))
            payload = orjson.loads(raw)
        except (binascii.Error, ValueError):
            raise BadRequest(_INVALID) from None
        if (
            not isinstance(payload, dict)
            or payload.get("v") != _VERSION
            or not isinstance(payload.get("q"), str)
            or not isinstance(payload.get("s"), str)
            or not isinstance(payload.get("k"), list)
            or len(payload["k"]) != 2
        ):
            raise BadRequest(_INVALID)
        if payload["q"] != qhash:
            raise BadRequest(
                "invalid 'page_token': it was issued for different filters or sort; "
                "reuse a page_token only with the query that returned it"
            )
        value, item_id = payload["k"]
        signature = self._sign(qhash, orjson.dumps(payload["k"]))
        if not hmac.compare_digest(signature, payload["s"].encode()):
            raise BadRequest(_INVALID)
        types = _VALUE_TYPES.get(kind, (int,))
        if not isinstance(item_id, str) or isinstance(value, bool) or not isinstance(value, types):
            raise BadRequest(_INVALID)
        return value, item_id

    def _sign(self, qhash: str, k: bytes) -> bytes:
        digest = hashlib.blake2b(qhash.encode() + b"|" + k, digest_size=8, key=self._key)
        return digest.hexdigest().encode()


def comes_after(value: Any, item_id: str, position: tuple[Any, str], desc: bool) -> bool:
    """Whether an item sorted by ``(value, item_id)`` comes after ``position``.

    Null values sort last in both orders; ties are broken on the id in the same direction.
    """
    pos_value, pos_id = position
    if pos_value is None:
        if value is not None:
            return False
        return item_id < pos_id if desc else item_id > pos_id
    if value is None:
        return True
    if desc:
        return bool((value, item_id) < (pos_value, pos_id))
    return bool((value, item_id) > (pos_value, pos_id))
