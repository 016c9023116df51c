"""`python -m bench.peer_apps.driver PEER REDIS_URL [APP_URL]`: one peer's client,
driven by arrayq's bench one JSON line at a time, so that every way takes its turn
in the same loop. Each request is answered with one JSON line:

- `{"do": "time", "kind": "noop" | "floats"}`: one job, submit -> result as an
  array, timed here -> `{"seconds"}`
- `{"do": "queue", "count": M, "kind": ...}`: M jobs submitted -> `{"seconds"}` it took
- `{"do": "drained"}`: waits for the queued jobs -> `{"finished": [epoch, ...]}`
- `{"do": "fidelity"}`: arrays with NaN, float32 and int16 through the peer ->
  `{"cases": {case: {"dtype", "nan", "equal"}}, "stored": what the peer keeps}`
"""

import json
import os
import sys
import time
import traceback
from importlib.metadata import version
from typing import Any

import numpy as np

from bench.peer_apps import jobs
from bench.peer_apps.clients import TIMEOUT, Client, TemplateClient, connect

PACKAGES = ("rq", "arq", "celery", "kombu", "redis", "fastapi", "uvicorn", "numpy", "httpx")


class Driver:
    def __init__(self, client: Client) -> None:
        self._client = client
        self._queued: list[str] = []

    def time(self, kind: str) -> dict[str, Any]:
        args = (jobs.FLOATS,) if kind == "floats" else ()
        start = time.perf_counter()
        result = self._client.result(self._client.submit(kind, *args))
        seconds = time.perf_counter() - start
        if kind == "floats" and not (isinstance(result, np.ndarray) and result.size == jobs.FLOATS):
            raise RuntimeError(f"expected {jobs.FLOATS} floats, got {type(result).__name__}")
        return {"seconds": seconds}

    def queue(self, count: int, kind: str) -> dict[str, Any]:
        args = (jobs.FLOATS,) if kind == "floats" else ()
        start = time.perf_counter()
        self._queued = [self._client.submit(kind, *args) for _ in range(count)]
        return {"seconds": time.perf_counter() - start}

    def drained(self) -> dict[str, Any]:
        deadline = time.monotonic() + 10 * TIMEOUT
        finished: dict[str, float] = {}
        while len(finished) < len(self._queued):
            if time.monotonic() > deadline:
                raise TimeoutError(f"{len(self._queued) - len(finished)} jobs still queued")
            for job_id in self._queued:
                if job_id not in finished and (at := self._client.finished_at(job_id)):
                    finished[job_id] = at
            time.sleep(0.1)
        return {"finished": sorted(finished.values())}

    def fidelity(self) -> dict[str, Any]:
        job_id = self._client.submit("nan32")
        deadline = time.monotonic() + TIMEOUT
        while not self._client.finished_at(job_id) and time.monotonic() < deadline:
            time.sleep(0.01)
        stored = _kind_of(self._client.stored(job_id))
        cases = {name: _trip(self._client, op, x) for name, (op, x) in jobs.CASES.items()}
        return {"cases": cases, "stored": stored}

    def versions(self) -> dict[str, str]:
        return {name: version(name) for name in PACKAGES}


def _trip(client: Client, op: str, x: np.ndarray | None) -> dict[str, str]:
    sent = jobs.nan32() if x is None else x
    # The template sends JSON, so the array goes as `.tolist()`.
    args = () if x is None else (x.tolist() if isinstance(client, TemplateClient) else x,)
    try:
        got = np.asarray(client.result(client.submit(op, *args)))
    except Exception as error:
        return jobs.failed(error)
    return jobs.compare(sent, got)


def _kind_of(raw: bytes) -> str:
    """What the stored result is, from its first bytes."""
    if raw[:1] == b"\x80":
        return f"a pickle (protocol {raw[1]}), {len(raw)} bytes"
    try:
        json.loads(raw)
    except ValueError:
        return f"{len(raw)} bytes of another kind: {raw[:20]!r}"
    return f"JSON text, {len(raw)} bytes"


def main() -> None:
    peer, redis_url, *rest = sys.argv[1:]
    # Answers go to the real stdout; whatever the libraries print goes to stderr.
    answers = os.fdopen(os.dup(1), "w")
    os.dup2(2, 1)
    driver = Driver(connect(peer, redis_url, rest[0] if rest else None))
    for line in sys.stdin:
        request = json.loads(line)
        try:
            handler = getattr(driver, request.pop("do"))
            answer = handler(**request)
        except Exception:
            answer = {"error": traceback.format_exc()[-3000:]}
        answers.write(json.dumps(answer) + "\n")
        answers.flush()


if __name__ == "__main__":
    main()
