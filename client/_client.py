"""The synchronous client: `Client` talks to the API, `Job` is one submitted job."""

import contextlib
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import Any
from urllib.parse import quote

import httpx
import numpy as np

from arrayq.client import _arrays, _http
from arrayq.client._errors import ArrayqError
from arrayq.client._feed import FeedError, FeedTimeout, ThreadFeed
from arrayq.client._http import FINAL_STATUSES, Deadline, RetryPolicy
from arrayq.client._progress import download_bar, job_bar
from arrayq.client._sse import EventParser

OnDocument = Callable[[dict[str, Any]], None]


class Client:
    """A connection to an arrayq API.

    `base_url` defaults to `$ARRAYQ_URL`, else http://127.0.0.1:8000; `api_key`
    to `$ARRAYQ_API_KEY`. Connection errors and 503 answers are retried up to
    `retries` times with exponential backoff and jitter. Arrays over
    `upload_over_bytes` are uploaded as .npy before the job is submitted;
    smaller ones travel inline.

    >>> with Client("http://127.0.0.1:8000") as client:
    ...     job = client.submit("matmul", a=np.eye(2), b=np.ones((2, 3)))
    ...     job.result()
    array([[1., 1., 1.],
           [1., 1., 1.]])
    """

    def __init__(
        self,
        base_url: str | None = None,
        api_key: str | None = None,
        timeout: float = 30.0,
        *,
        retries: int = 4,
        upload_over_bytes: int = _arrays.UPLOAD_OVER_BYTES,
    ) -> None:
        self.base_url = _http.base_url(base_url)
        self._origin = httpx.URL(self.base_url)
        self._timeout = timeout
        self._retry = RetryPolicy(retries=retries)
        self._upload_over = upload_over_bytes
        headers = _http.auth_headers(api_key)
        self._api = httpx.Client(
            base_url=self.base_url, headers=headers, timeout=timeout, follow_redirects=False
        )
        # Presigned object-store links carry their own credential: no API key goes there.
        self._plain = httpx.Client(timeout=timeout, follow_redirects=False)

    def __repr__(self) -> str:
        return f"Client({self.base_url!r})"

    def __enter__(self) -> "Client":
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def close(self) -> None:
        self._api.close()
        self._plain.close()

    def ops(self) -> list[dict[str, Any]]:
        """The registered ops: name, summary, params schema, inputs, result kind.

        >>> [op["name"] for op in client.ops()][:3]
        ['fft', 'gaussian_blur', 'mandelbrot']
        """
        return self._send("GET", "/ops").json()

    def submit(
        self,
        op: str,
        params: dict[str, Any] | None = None,
        *,
        idempotency_key: str | None = None,
        **inputs: Any,
    ) -> "Job":
        """Submit a job; inputs are arrays (or anything `np.asarray` takes).

        Without an `idempotency_key` a fresh one is sent, so that a retried
        request never submits twice.

        >>> job = client.submit("random", {"shape": [3, 4], "seed": 1})
        >>> job.wait().result().shape
        (3, 4)
        """
        encoded = {name: self._input(_arrays.as_array(value)) for name, value in inputs.items()}
        headers = {
            "Content-Type": "application/json",
            "Idempotency-Key": idempotency_key or _http.new_idempotency_key(),
        }
        body = _arrays.job_body(op, params or {}, encoded)
        return Job(self, self._send("POST", "/jobs", content=body, headers=headers).json())

    def job(self, job_id: str) -> "Job":
        """The job of that id (`NotFound` if there is none for this API key).

        >>> client.job("01J...").status()
        'succeeded'
        """
        return Job(self, self._send("GET", job_path(job_id)).json())

    def jobs(
        self, status: str | None = None, op: str | None = None, limit: int = 50
    ) -> Iterator[dict[str, Any]]:
        """Job documents, newest first, fetched `limit` per page as you iterate.

        >>> [job["id"] for job in itertools.islice(client.jobs(status="failed"), 5)]
        """
        cursor = None
        while True:
            params = _http.list_params(status, op, limit, cursor)
            page = self._send("GET", "/jobs", params=params).json()
            yield from page["items"]
            cursor = page.get("next_cursor")
            if not cursor:
                return

    def _input(self, array: np.ndarray) -> Any:
        if array.nbytes > self._upload_over:
            return {"upload": self._upload(array)["id"]}
        return _arrays.inline_input(array)

    def _upload(self, array: np.ndarray) -> dict[str, Any]:
        _, nbytes = _arrays.npy_upload(array)
        headers = {"Content-Type": "application/x-npy", "Content-Length": str(nbytes)}
        response = self._send(
            "POST",
            "/uploads",
            body=lambda: _arrays.npy_upload(array)[0],
            headers=headers,
            safe=True,
        )
        return response.json()

    def _send(
        self,
        method: str,
        url: str | httpx.URL,
        *,
        stream: bool = False,
        safe: bool | None = None,
        body: Callable[[], Iterable[Any]] | None = None,
        via: httpx.Client | None = None,
        **kwargs: Any,
    ) -> httpx.Response:
        """One request, retried as the policy allows; an error answer raises.
        `body` makes a fresh request body for each attempt."""
        http = via or self._api
        safe = _http.is_safe(method, kwargs.get("headers")) if safe is None else safe
        attempt = 0
        while True:
            content = {"content": body()} if body is not None else {}
            request = http.build_request(method, url, **kwargs, **content)
            try:
                response = http.send(request, stream=stream)
            except httpx.TransportError as exc:
                if not self._retry.retry_error(attempt, exc, safe):
                    raise _http.transport_error(exc, str(request.url)) from exc
                time.sleep(self._retry.delay(attempt))
            else:
                if not self._retry.retry_response(attempt, response, safe):
                    return _checked(response)
                response.close()
                time.sleep(self._retry.delay(attempt, response))
            attempt += 1

    @contextlib.contextmanager
    def _open(self, url: str, params: dict[str, Any]) -> Iterator[httpx.Response]:
        """A streamed GET that follows redirects itself: the API key only to the API."""
        response = self._send("GET", url, params=params, stream=True)
        try:
            for _ in range(_http.MAX_REDIRECTS):
                if not response.is_redirect:
                    break
                target = _http.redirect_url(response)
                response.close()
                via = self._api if _http.same_origin(target, self._origin) else self._plain
                response = self._send("GET", target, stream=True, via=via)
            if response.is_redirect:
                raise ArrayqError(f"more than {_http.MAX_REDIRECTS} redirects from {url}")
            yield response
        finally:
            response.close()

    def _follow(self, job_id: str, deadline: Deadline, on_document: OnDocument) -> None:
        """Feed `on_document` with the job's documents until it ends: from its
        event stream, or by polling when the stream is unavailable."""
        with ThreadFeed(lambda stop: self._events(job_id, stop)) as feed:
            try:
                while (document := feed.next(deadline.remaining())) is not None:
                    on_document(document)
                    if document["status"] in FINAL_STATUSES:
                        return
            except FeedTimeout:
                raise deadline.expired(job_id) from None
            except FeedError:
                pass
        self._poll(job_id, deadline, on_document)

    def _events(self, job_id: str, stop: threading.Event) -> Iterator[dict[str, Any]]:
        timeout = httpx.Timeout(self._timeout, read=_http.EVENTS_READ_TIMEOUT)
        headers = {"Accept": "text/event-stream"}
        url = job_path(job_id, "events")
        response = self._send("GET", url, stream=True, headers=headers, timeout=timeout)
        try:
            if not response.headers.get("content-type", "").startswith("text/event-stream"):
                raise ArrayqError(f"{url} did not answer with an event stream")
            parser = EventParser()
            for line in response.iter_lines():
                if stop.is_set():
                    return
                event = parser.feed(line)
                if event is not None:
                    yield event.json()
        finally:
            response.close()

    def _poll(self, job_id: str, deadline: Deadline, on_document: OnDocument) -> None:
        interval = 0.1
        while True:
            document = self._send("GET", job_path(job_id)).json()
            on_document(document)
            if document["status"] in FINAL_STATUSES:
                return
            time.sleep(deadline.pause(interval, job_id))
            interval = _http.poll_interval(interval)


class Job:
    """One submitted job. `document` is its job document as last seen.

    >>> job = client.submit("sleep", {"seconds": 2})
    >>> job.wait(progress=True).status()
    'succeeded'
    """

    def __init__(self, client: Client, document: dict[str, Any]) -> None:
        self._client = client
        self.document = document

    @property
    def id(self) -> str:
        return self.document["id"]

    def __repr__(self) -> str:
        return f"<Job {self.id} {self.document.get('op')} {self.document['status']}>"

    def refresh(self) -> dict[str, Any]:
        """Fetch the job document again, and return it."""
        self.document = self._client._send("GET", job_path(self.id)).json()
        return self.document

    def status(self) -> str:
        """The current status: queued, running, succeeded, failed or cancelled.

        >>> job.status()
        'running'
        """
        return self.refresh()["status"]

    def wait(self, timeout: float | None = None, progress: bool = False) -> "Job":
        """Wait until the job ends, following its event stream (or polling).

        Raises `JobFailed` or `JobCancelled` if it ended so, `Timeout` after
        `timeout` seconds. `progress=True` shows a progress bar.

        >>> client.submit("sleep", {"seconds": 1}).wait(timeout=60).document["status"]
        'succeeded'
        """
        deadline = Deadline(timeout)
        with job_bar(progress, self.id) as show:
            show(self.document)

            def seen(document: dict[str, Any]) -> None:
                self.document = document
                show(document)

            if self.document["status"] not in FINAL_STATUSES:
                self._client._follow(self.id, deadline, seen)
        _http.check_final(self.document)
        return self

    def result(self, timeout: float | None = None) -> np.ndarray:
        """The result array, with its exact dtype; waits for the job first.

        Small results come as JSON, others as .npy (from the object store when
        the API redirects there).

        >>> client.submit("random", {"shape": [2], "dtype": "float32"}).result().dtype
        dtype('float32')
        """
        info = _http.result_info(self._finished(timeout))
        url = job_path(self.id, "result")
        if "json" in info["formats"]:
            response = self._client._send("GET", url, params={"format": "json"})
            return _arrays.from_json(response.content, max_bytes=info["nbytes"])
        with _arrays.spool() as file, self._client._open(url, {"format": "npy"}) as response:
            for chunk in response.iter_bytes():
                file.write(chunk)
            return _arrays.from_npy_file(file, max_bytes=info["nbytes"])

    def download(self, path: str | Path, *, progress: bool = True) -> Path:
        """Stream the result to `path` (.npy, or PNG when the path ends in .png),
        with a progress bar of size and speed; waits for the job first.

        >>> job.download("result.npy")
        PosixPath('result.npy')
        """
        target = Path(path)
        _http.result_info(self._finished(None))
        params = {"format": _http.download_format(target.name)}
        partial = target.with_name(f".{target.name}.part")
        try:
            with self._client._open(job_path(self.id, "result"), params) as response:
                _save(response, partial, progress, target.name)
            partial.replace(target)
        finally:
            partial.unlink(missing_ok=True)
        return target

    def image(
        self, cmap: str | None = None, vmin: float | None = None, vmax: float | None = None
    ) -> bytes:
        """The result as PNG bytes: an image result, or a 2-D array through a colormap.

        >>> Image.open(io.BytesIO(job.image(cmap="magma"))).size
        (800, 600)
        """
        _http.result_info(self._finished(None))
        params = {"format": "png", "cmap": cmap, "vmin": vmin, "vmax": vmax}
        given = {name: value for name, value in params.items() if value is not None}
        return self._client._send("GET", job_path(self.id, "result"), params=given).content

    def cancel(self) -> None:
        """Cancel the job if it is queued or running; delete its result if it has ended.

        >>> job.cancel()
        """
        self._client._send("DELETE", job_path(self.id))

    def url(self) -> str:
        """A signed, expiring download link of the .npy result (no API key needed).

        >>> job.url()
        'http://127.0.0.1:8000/files/01J...?exp=...&sig=...'
        """
        return self._client._send("GET", job_path(self.id, "result", "url")).json()["url"]

    def _finished(self, timeout: float | None) -> dict[str, Any]:
        if self.document["status"] not in FINAL_STATUSES:
            self.wait(timeout)
        return self.document


def job_path(job_id: str, *rest: str) -> str:
    return "/".join(("/jobs", quote(job_id, safe=""), *rest))


def _save(response: httpx.Response, path: Path, progress: bool, label: str) -> None:
    length = response.headers.get("content-length")
    total = int(length) if length and length.isdigit() else None
    with path.open("wb") as file, download_bar(progress, label, total) as advance:
        for chunk in response.iter_bytes():
            file.write(chunk)
            advance(len(chunk))


def _checked(response: httpx.Response) -> httpx.Response:
    if response.status_code < 400:
        return response
    try:
        response.read()
    finally:
        response.close()
    raise _http.error_of(response)
