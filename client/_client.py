# Generated from _async.py by `python -m arrayq.client._unasync`: do not edit.
"""The Python client. `_async.py` is the source; `_client.py`, its synchronous
twin, is generated from it by `python -m arrayq.client._unasync` (`make unasync`)."""

import contextlib
import time
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import Any

import httpx
import numpy as np

from arrayq.client import _arrays, _http
from arrayq.client import _sync_io as io
from arrayq.client._errors import ArrayqError, NotFound, Timeout
from arrayq.client._http import FINAL_STATUSES, Deadline, RetryPolicy, job_path
from arrayq.client._progress import download_bar, job_bar
from arrayq.client._sse import EventParser
from arrayq.client._view import JobView, OutputView

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
        self._headers = _http.auth_headers(api_key)
        self._api = httpx.Client(
            base_url=self.base_url, headers=self._headers, timeout=timeout, follow_redirects=False
        )
        # Presigned object-store links carry their own credential: no API key goes there.
        self._plain = httpx.Client(timeout=timeout, follow_redirects=False)

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.base_url!r})"

    def __enter__(self) -> "Client":
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def close(self) -> None:
        self._api.close()
        self._plain.close()

    def ops(self) -> list[dict[str, Any]]:
        """The registered ops: name, summary, params schema, inputs, outputs, result kind.

        >>> [op["name"] for op in client.ops()][:3]
        ['eigh', 'fft', 'gaussian_blur']
        """
        return self._send("GET", "/ops").json()

    def submit(
        self,
        op: str,
        params: dict[str, Any] | None = None,
        *,
        idempotency_key: str | None = None,
        wait: float | None = None,
        cache: bool | None = None,
        ttl_seconds: int | None = None,
        callback: str | dict[str, Any] | None = None,
        **inputs: Any,
    ) -> "Job":
        """Submit a job. Inputs are arrays (or anything `np.asarray` takes), or
        another job's result by reference: a job, or `job.output(name)`,
        sliced or not (`job.output("result")[:10]`); that result never passes
        through this client.

        `wait=N` returns once the job is final or N seconds have passed (the
        server holds the request: `Prefer: wait`). `cache=False` runs it even
        if an identical job's result exists; `ttl_seconds` is how long it is
        kept once final; `callback` a URL (or `{"url", "events"}`) that the
        service POSTs the job to when it ends. Without an `idempotency_key` a
        fresh one is sent, so that a retried request never submits twice.

        >>> job = client.submit("random", {"shape": [3, 4], "seed": 1}, wait=10)
        >>> job.document["status"]
        'succeeded'
        """
        encoded = {}
        for name, value in inputs.items():
            encoded[name] = self._input(value)
        body = _http.job_body(
            op, params or {}, encoded, cache=cache, ttl_seconds=ttl_seconds, callback=callback
        )
        deadline = Deadline(wait)
        held = _http.wait_seconds(deadline.remaining()) if wait is not None else 0
        headers = {
            "Content-Type": "application/json",
            "Idempotency-Key": idempotency_key or _http.new_idempotency_key(),
            **_http.prefer_wait(held),
        }
        timeout = _http.held_timeout(self._timeout, held)
        response = self._send("POST", "/jobs", content=body, headers=headers, timeout=timeout)
        job = Job(self, response.json())
        if wait is not None and job.document["status"] not in FINAL_STATUSES:
            with contextlib.suppress(Timeout):
                self._poll(job.id, deadline, job._seen)
        return job

    def job(self, job_id: str) -> "Job":
        """The job of that id (`NotFound` if there is none for this API key,
        `Expired` if it is past its lifetime).

        >>> client.job("01J...").document["status"]
        'succeeded'
        """
        response = self._send("GET", job_path(job_id))
        return Job(self, response.json())

    def jobs(
        self, status: str | None = None, op: str | None = None, limit: int = 50
    ) -> Iterator[dict[str, Any]]:
        """Job documents, newest first, fetched `limit` per page as you iterate.

        >>> [job["id"] for job in client.jobs(status="failed")]
        """
        cursor = None
        while True:
            params = _http.list_params(status, op, limit, cursor)
            page = self._send("GET", "/jobs", params=params).json()
            for item in page["items"]:  # noqa: UP028, RUF100 (only the sync twin can yield from)
                yield item
            cursor = page.get("next_cursor")
            if not cursor:
                return

    def _input(self, value: Any) -> Any:
        reference = _http.reference_of(value)
        if reference is not None:
            return reference
        array = _arrays.as_array(value)
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
            content = {"content": io.body(body())} if body is not None else {}
            request = http.build_request(method, url, **kwargs, **content)
            try:
                response = http.send(request, stream=stream)
            except httpx.TransportError as exc:
                if not self._retry.retry_error(attempt, exc, safe):
                    raise _http.transport_error(exc, str(request.url)) from exc
                io.sleep(self._retry.delay(attempt))
            else:
                if not self._retry.retry_response(attempt, response, safe):
                    return _checked(response)
                response.close()
                io.sleep(self._retry.delay(attempt, response))
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

    def _array(self, url: str, info: dict[str, Any], slice: str | None) -> np.ndarray:
        """One array: inline JSON when it fits, else .npy spooled to a temporary file."""
        params = _http.array_params(info, slice)
        if params["format"] == "json":
            response = self._send("GET", url, params=params)
            return _arrays.from_json(response.content, max_bytes=info["nbytes"])
        with _arrays.spool() as file:
            with self._open(url, params) as response:
                for chunk in response.iter_bytes():
                    file.write(chunk)
            return _arrays.from_npy_file(file, max_bytes=info["nbytes"])

    def _arrays(self, job_id: str, info: dict[str, Any]) -> dict[str, np.ndarray]:
        """Every output of a multi-output job: inline JSON when it fits, else .npz."""
        url = job_path(job_id, "result")
        if "json" in info.get("formats", ()):
            response = self._send("GET", url, params={"format": "json"})
            return _arrays.outputs_from_json(response.content, info)
        with _arrays.spool() as file:
            with self._open(url, {"format": "npz"}) as response:
                for chunk in response.iter_bytes():
                    file.write(chunk)
            return _arrays.outputs_from_npz_file(file, info)

    def _save(self, url: str, params: dict[str, Any], path: Path, progress: bool) -> Path:
        """Stream a download to `path` (written whole or not at all)."""
        partial = path.with_name(f".{path.name}.part")
        try:
            with self._open(url, params) as response:
                total = _http.content_length(response)
                with partial.open("wb") as file, download_bar(progress, path.name, total) as add:
                    for chunk in response.iter_bytes():
                        file.write(chunk)
                        add(len(chunk))
            partial.replace(path)
        finally:
            partial.unlink(missing_ok=True)
        return path

    def _follow(self, job_id: str, deadline: Deadline, on_document: OnDocument) -> None:
        """Feed `on_document` with the job's documents until it ends: from its
        event stream (for progress), else by long polls."""

        def take(document: dict[str, Any]) -> bool:
            on_document(document)
            return document["status"] in FINAL_STATUSES

        try:
            if io.drain(self._events(job_id), take, deadline.remaining()):
                return
        except TimeoutError:
            raise deadline.expired(job_id) from None
        except (ArrayqError, httpx.HTTPError):
            pass
        self._poll(job_id, deadline, on_document)

    def _events(self, job_id: str) -> Iterator[dict[str, Any]]:
        timeout = httpx.Timeout(self._timeout, read=_http.EVENTS_READ_TIMEOUT)
        headers = {"Accept": "text/event-stream"}
        url = job_path(job_id, "events")
        response = self._send("GET", url, stream=True, headers=headers, timeout=timeout)
        try:
            if not response.headers.get("content-type", "").startswith("text/event-stream"):
                raise ArrayqError(f"{url} did not answer with an event stream")
            parser = EventParser()
            for line in response.iter_lines():
                event = parser.feed(line)
                if event is not None:
                    yield event.json()
        finally:
            response.close()

    def _poll(self, job_id: str, deadline: Deadline, on_document: OnDocument) -> None:
        """Long polls (`Prefer: wait`) until the job is final; paced by sleeps
        when the server answers at once."""
        interval = 0.1
        while True:
            held = _http.wait_seconds(deadline.remaining())
            started = time.monotonic()
            response = self._send(
                "GET",
                job_path(job_id),
                headers=_http.prefer_wait(held),
                timeout=_http.held_timeout(self._timeout, held),
            )
            document = response.json()
            on_document(document)
            if document["status"] in FINAL_STATUSES:
                return
            if _http.answered_early(time.monotonic() - started, held):
                io.sleep(deadline.pause(interval, job_id))
                interval = _http.poll_interval(interval)
            elif deadline.remaining() == 0:
                raise deadline.expired(job_id)


class Job(JobView):
    """One submitted job. `document` is its job document as last seen; in a
    notebook it shows its status, progress and a preview of its result.

    >>> job = client.submit("sleep", {"seconds": 2})
    >>> job.wait(progress=True)
    <Job 01J... sleep succeeded>
    """

    def __init__(self, client: Client, document: dict[str, Any]) -> None:
        self._client = client
        self.document = document

    @property
    def id(self) -> str:
        return self.document["id"]

    def refresh(self) -> dict[str, Any]:
        """Fetch the job document again, and return it."""
        response = self._client._send("GET", job_path(self.id))
        self.document = response.json()
        return self.document

    def status(self) -> str:
        """The current status: queued, running, succeeded, failed or cancelled.

        >>> job.status()
        'running'
        """
        return self.refresh()["status"]

    def wait(self, timeout: float | None = None, progress: bool = False) -> "Job":
        """Wait until the job ends (by long polls; with `progress=True`, following
        its event stream with a progress bar).

        Raises `JobFailed` or `JobCancelled` if it ended so, `Timeout` after
        `timeout` seconds.

        >>> job.wait(timeout=60)
        <Job 01J... sleep succeeded>
        """
        deadline = Deadline(timeout)
        if self.document["status"] not in FINAL_STATUSES:
            if progress:
                with job_bar(True, self.id) as show:
                    show(self.document)
                    self._client._follow(self.id, deadline, _both(self._seen, show))
            else:
                self._client._poll(self.id, deadline, self._seen)
        _http.check_final(self.document)
        return self

    def result(
        self, timeout: float | None = None, *, slice: str | None = None
    ) -> np.ndarray | dict[str, np.ndarray]:
        """The result array with its exact dtype (a dict of arrays by name for a
        job with several outputs); waits for the job first. `slice` asks the
        server for part of it only (NumPy basic slicing, as `?slice=`).

        >>> job.result().shape
        (1000, 800)
        >>> job.result(slice="0:10, ::2").shape
        (10, 400)
        """
        info = _http.result_info(self._finished(timeout))
        if not _http.is_multi(info):
            return self._client._array(job_path(self.id, "result"), info, slice)
        if slice is not None:
            raise ValueError("slice one output of this job: job.output(name).result(slice=...)")
        return self._client._arrays(self.id, info)

    def output(self, name: str, slice: str | None = None) -> "Output":
        """One named output (`result` for a job with one), fetched when asked for;
        also a reference to it as another job's input, sliced or not.

        >>> job.output("eigenvalues").result()
        array([1., 3.])
        >>> client.submit("scale", x=job.output("eigenvectors")[:, :1])
        """
        return Output(self, name, slice)

    def download(self, path: str | Path, *, progress: bool = True) -> Path:
        """Stream the result to `path`: .npy, PNG for a .png path, and for a job
        with several outputs an .npz of all of them; waits for the job first.

        >>> job.download("result.npy")
        PosixPath('result.npy')
        """
        target = Path(path)
        info = _http.result_info(self._finished(None))
        params = {"format": _http.download_format(target.name, _http.is_multi(info))}
        return self._client._save(job_path(self.id, "result"), params, target, progress)

    def image(
        self, cmap: str | None = None, vmin: float | None = None, vmax: float | None = None
    ) -> bytes:
        """The result as PNG bytes: an image result, or a 2-D array through a colormap.

        >>> Image.open(io.BytesIO(job.image(cmap="magma"))).size
        (800, 600)
        """
        _http.result_info(self._finished(None))
        params = _http.png_params(cmap, vmin, vmax)
        response = self._client._send("GET", job_path(self.id, "result"), params=params)
        return response.content

    def cancel(self) -> bool:
        """Cancel the job if it is queued or running: True if it was, False (and
        nothing done) if it had already ended.

        >>> job.cancel()
        True
        """
        if self.refresh()["status"] in FINAL_STATUSES:
            return False
        self._client._send("DELETE", job_path(self.id))
        with contextlib.suppress(NotFound):
            self.refresh()
        return True

    def delete(self) -> None:
        """Delete the job and its results (cancelling it first if it is not final).

        >>> job.delete()
        """
        with contextlib.suppress(NotFound):
            if self.refresh()["status"] not in FINAL_STATUSES:
                self._client._send("DELETE", job_path(self.id))
            self._client._send("DELETE", job_path(self.id))

    def url(self) -> str:
        """A signed, expiring download link of the .npy result (no API key needed).

        >>> job.url()
        'http://127.0.0.1:8000/files/01J...?exp=...&sig=...'
        """
        response = self._client._send("GET", job_path(self.id, "result", "url"))
        return response.json()["url"]

    def _finished(self, timeout: float | None) -> dict[str, Any]:
        if self.document["status"] not in FINAL_STATUSES:
            self.wait(timeout)
        return self.document

    def _seen(self, document: dict[str, Any]) -> None:
        self.document = document

    def _arrayq_reference(self) -> dict[str, str]:
        return _http.reference(self.id, None, None)


class Output(OutputView):
    """One output of a job, by name, as `job.output(name)` gives it: fetched when
    asked for, or passed as another job's input by reference; `output[...]`
    is a slice of it (ints and slices, as `?slice=`).

    >>> vectors = job.output("eigenvectors")
    >>> vectors.result().shape
    (3, 3)
    >>> client.submit("scale", {"factor": 2}, x=vectors[:, 0])
    """

    def __init__(self, job: Job, name: str, slice: str | None = None) -> None:
        self.job = job
        self.name = name
        self.slice = slice

    def __getitem__(self, key: Any) -> "Output":
        if self.slice is not None:
            raise ValueError(f"{self!r} is sliced already")
        return Output(self.job, self.name, _http.slice_text(key))

    def result(self, timeout: float | None = None) -> np.ndarray:
        """This output's array (its slice only, if sliced); waits for the job first.

        >>> job.output("eigenvalues").result()
        array([1., 3.])
        """
        info = _http.output_info(self.job._finished(timeout), self.name)
        return self.job._client._array(self._path(), info, self.slice)

    def download(self, path: str | Path, *, progress: bool = True) -> Path:
        """Stream this output to `path` (.npy, or PNG for a .png path).

        >>> job.output("eigenvectors").download("vectors.npy")
        PosixPath('vectors.npy')
        """
        target = Path(path)
        _http.output_info(self.job._finished(None), self.name)
        params = {"format": _http.download_format(target.name)}
        if self.slice is not None:
            params["slice"] = self.slice
        return self.job._client._save(self._path(), params, target, progress)

    def image(
        self, cmap: str | None = None, vmin: float | None = None, vmax: float | None = None
    ) -> bytes:
        """This output as PNG bytes (an image, or a 2-D array through a colormap).

        >>> png = job.output("labels").image(cmap="magma")
        """
        _http.output_info(self.job._finished(None), self.name)
        params = _http.png_params(cmap, vmin, vmax)
        if self.slice is not None:
            params["slice"] = self.slice
        response = self.job._client._send("GET", self._path(), params=params)
        return response.content

    def _arrayq_reference(self) -> dict[str, str]:
        return _http.reference(self.job.id, self._reference_name(), self.slice)


def _both(first: OnDocument, second: OnDocument) -> OnDocument:
    def both(document: dict[str, Any]) -> None:
        first(document)
        second(document)

    return both


def _checked(response: httpx.Response) -> httpx.Response:
    if response.status_code < 400:
        return response
    try:
        response.read()
    finally:
        response.close()
    raise _http.error_of(response)
