"""The baseline of benchmark 1: a bare httpx loop following page tokens, writing raw bytes.

Run in process (:func:`fetch_all`) and as a command of its own
(``python -m benchmarks.bare BASE_URL API_KEY RUNS_PATH OUT``), which pays for starting
Python and importing httpx as ``timbal-runs`` does, with the same start-up help.
"""

from __future__ import annotations

import sys

from timbal_integrations._startup import defer_httpx_cli, importing

defer_httpx_cli()  # the same start-up help timbal-runs gets, so that only the loop differs
with importing(freeze=__name__ == "__main__"):
    import httpx
    import orjson


def fetch_all(base_url: str, api_key: str, runs_path: str, out: str) -> None:
    """Follow page tokens from the first page to the last, writing each body as a line."""
    headers = {"Authorization": f"Bearer {api_key}"}
    with httpx.Client(base_url=base_url, headers=headers) as client, open(out, "wb") as f:
        token = None
        while True:
            response = client.get(runs_path, params={"page_token": token} if token else None)
            response.raise_for_status()
            f.write(response.content)
            f.write(b"\n")
            token = orjson.loads(response.content)["next_page_token"]
            if not token:
                break


if __name__ == "__main__":
    fetch_all(*sys.argv[1:5])
