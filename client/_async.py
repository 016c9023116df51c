"""The asynchronous client: `AsyncClient` and `AsyncJob`, the surface of `Client` and `Job`."""

import contextlib
from collections.abc import AsyncIterator, Callable, Iterable
from pathlib import Path
from typing import Any

import anyio
import httpx
import numpy as np

from arrayq.client import _arrays, _http
from arrayq.client._client import job_path
from arrayq.client._errors import ArrayqError
from arrayq.client._http import FINAL_STATUSES, Deadline, RetryPolicy
from arrayq.client._progress import download_bar, job_bar
from arrayq.client._sse import EventParser

OnDocument = Callable[[dict[str, Any]], None]


class AsyncClient:
    """`Client` for asyncio (or trio): the same methods, awaited.

    >>> async with AsyncClient("http://127.0.0.1:8000") as client:
    ...     job = await client.submit("matmul", a=np.eye(2), b=np.ones((2, 3)))
    ...     await job.result()
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
        self._api = httpx.AsyncClient(
            base_url=self.base_url,
            headers=_http.auth_headers(api_key),
            timeout=timeout,
            follow_redirects=False,
        )
        # Presigned object-store links carry their own credential: no API key goes there.
        self._plain = httpx.AsyncClient(timeout=timeout, follow_redirects=False)

    def __repr__(self) -> str:
        return f"AsyncClient({self.base_url!r})"

    async def __aenter__(self) -> "AsyncClient":
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        await self._api.aclose()
        await self._plain.aclose()

    async def ops(self) -> list[dict[str, Any]]:
        """The registered ops.

        >>> [op["name"] for op in await client.ops()][:2]
        ['fft', 'gaussian_blur']
        """
        return (await self._send("GET", "/ops")).json()

    async def submit(
        self,
        op: str,
        params: dict[str, Any] | None = None,
        *,
        idempotency_key: str | None = None,
        **inputs: Any,
    ) -> "AsyncJob":
        """Submit a job; large arrays are uploaded first.

        >>> job = await client.submit("random", {"shape": [3, 4], "seed": 1})
        """
        encoded = {}
        for name, value in inputs.items():
            encoded[name] = await self._input(_arrays.as_array(value))
        headers = {
            "Content-Type": "application/json",
            "Idempotency-Key": idempotency_key or _http.new_idempotency_key(),
        }
        body = _arrays.job_body(op, params or {}, encoded)
        response = await self._send("POST", "/jobs", content=body, headers=headers)
        return AsyncJob(self, response.json())

    async def job(self, job_id: str) -> "AsyncJob":
        """The job of that id (`NotFound` if there is none for this API key).

        >>> await (await client.job("01J...")).status()
        'succeeded'
        """
        return AsyncJob(self, (await self._send("GET", job_path(job_id))).json())

    async def jobs(
        self, status: str | None = None, op: str | None = None, limit: int = 50
    ) -> AsyncIterator[dict[str, Any]]:
        """Job documents, newest first, fetched `limit` per page.

        >>> [job["id"] async for job in client.jobs(op="matmul")]
        """
        cursor = None
        while True:
            params = _http.list_params(status, op, limit, cursor)
            page = (await self._send("GET", "/jobs", params=params)).json()
            for item in page["items"]:
                yield item
            cursor = page.get("next_cursor")
            if not cursor:
                return

    async def _input(self, array: np.ndarray) -> Any:
        if array.nbytes > self._upload_over:
            return {"upload": (await self._upload(array))["id"]}
        return _arrays.inline_input(array)

    async def _upload(self, array: np.ndarray) -> dict[str, Any]:
        _, nbytes = _arrays.npy_upload(array)
        headers = {"Content-Type": "application/x-npy", "Content-Length": str(nbytes)}
        response = await self._send(
            "POST",
            "/uploads",
            body=lambda: _arrays.npy_upload(array)[0],
            headers=headers,
            safe=True,
        )
        return response.json()

    async def _send(
        self,
        method: str,
        url: str | httpx.URL,
        *,
        stream: bool = False,
        safe: bool | None = None,
        body: Callable[[], Iterable[Any]] | None = None,
        via: httpx.AsyncClient | None = None,
        **kwargs: Any,
    ) -> httpx.Response:
        """One request, retried as the policy allows; an error answer raises."""
        http = via or self._api
        safe = _http.is_safe(method, kwargs.get("headers")) if safe is None else safe
        attempt = 0
        while True:
            content = {"content": _aiter(body())} if body is not None else {}
            request = http.build_request(method, url, **kwargs, **content)
            try:
                response = await http.send(request, stream=stream)
            except httpx.TransportError as exc:
                if not self._retry.retry_error(attempt, exc, safe):
                    raise _http.transport_error(exc, str(request.url)) from exc
                await anyio.sleep(self._retry.delay(attempt))
            else:
                if not self._retry.retry_response(attempt, response, safe):
                    return await _checked(response)
                await response.aclose()
                await anyio.sleep(self._retry.delay(attempt, response))
            attempt += 1

    @contextlib.asynccontextmanager
    async def _open(self, url: str, params: dict[str, Any]) -> AsyncIterator[httpx.Response]:
        """A streamed GET that follows redirects itself: the API key only to the API."""
        response = await self._send("GET", url, params=params, stream=True)
        try:
            for _ in range(_http.MAX_REDIRECTS):
                if not response.is_redirect:
                    break
                target = _http.redirect_url(response)
                await response.aclose()
                via = self._api if _http.same_origin(target, self._origin) else self._plain
                response = await self._send("GET", target, stream=True, via=via)
            if response.is_redirect:
                raise ArrayqError(f"more than {_http.MAX_REDIRECTS} redirects from {url}")
            yield response
        finally:
            await response.aclose()

    async def _follow(self, job_id: str, deadline: Deadline, on_document: OnDocument) -> None:
        """Feed `on_document` until the job ends: from its event stream, or by
        polling when the stream is unavailable."""
        try:
            with anyio.fail_after(deadline.remaining()):
                if await self._events(job_id, on_document):
                    return
        except TimeoutError:
            raise deadline.expired(job_id) from None
        except (ArrayqError, httpx.HTTPError):
            pass
        await self._poll(job_id, deadline, on_document)

    async def _events(self, job_id: str, on_document: OnDocument) -> bool:
        """Whether the stream went on to the final status."""
        timeout = httpx.Timeout(self._timeout, read=_http.EVENTS_READ_TIMEOUT)
        headers = {"Accept": "text/event-stream"}
        url = job_path(job_id, "events")
        response = await self._send("GET", url, stream=True, headers=headers, timeout=timeout)
        try:
            return await _read_events(response, url, on_document)
        finally:
            await response.aclose()

    async def _poll(self, job_id: str, deadline: Deadline, on_document: OnDocument) -> None:
        interval = 0.1
        while True:
            document = (await self._send("GET", job_path(job_id))).json()
            on_document(document)
            if document["status"] in FINAL_STATUSES:
                return
            await anyio.sleep(deadline.pause(interval, job_id))
            interval = _http.poll_interval(interval)


class AsyncJob:
    """One submitted job, for `AsyncClient`; `document` is its job document as last seen.

    >>> job = await client.submit("sleep", {"seconds": 2})
    >>> await (await job.wait(progress=True)).status()
    'succeeded'
    """

    def __init__(self, client: AsyncClient, document: dict[str, Any]) -> None:
        self._client = client
        self.document = document

    @property
    def id(self) -> str:
        return self.document["id"]

    def __repr__(self) -> str:
        return f"<AsyncJob {self.id} {self.document.get('op')} {self.document['status']}>"

    async def refresh(self) -> dict[str, Any]:
        """Fetch the job document again, and return it."""
        self.document = (await self._client._send("GET", job_path(self.id))).json()
        return self.document

    async def status(self) -> str:
        """The current status.

        >>> await job.status()
        'running'
        """
        return (await self.refresh())["status"]

    async def wait(self, timeout: float | None = None, progress: bool = False) -> "AsyncJob":
        """Wait until the job ends; `JobFailed`, `JobCancelled` or `Timeout` as `Job.wait`.

        >>> await job.wait(timeout=60)
        """
        deadline = Deadline(timeout)
        with job_bar(progress, self.id) as show:
            show(self.document)

            def seen(document: dict[str, Any]) -> None:
                self.document = document
                show(document)

            if self.document["status"] not in FINAL_STATUSES:
                await self._client._follow(self.id, deadline, seen)
        _http.check_final(self.document)
        return self

    async def result(self, timeout: float | None = None) -> np.ndarray:
        """The result array, with its exact dtype; waits for the job first.

        >>> (await job.result()).dtype
        dtype('float64')
        """
        info = _http.result_info(await self._finished(timeout))
        url = job_path(self.id, "result")
        if "json" in info["formats"]:
            response = await self._client._send("GET", url, params={"format": "json"})
            return _arrays.from_json(response.content, max_bytes=info["nbytes"])
        with _arrays.spool() as file:
            async with self._client._open(url, {"format": "npy"}) as response:
                async for chunk in response.aiter_bytes():
                    file.write(chunk)
            return _arrays.from_npy_file(file, max_bytes=info["nbytes"])

    async def download(self, path: str | Path, *, progress: bool = True) -> Path:
        """Stream the result to `path` (.npy, or PNG for .png) with a progress bar.

        >>> await job.download("result.npy")
        PosixPath('result.npy')
        """
        target = Path(path)
        _http.result_info(await self._finished(None))
        params = {"format": _http.download_format(target.name)}
        partial = target.with_name(f".{target.name}.part")
        try:
            async with self._client._open(job_path(self.id, "result"), params) as response:
                await _save(response, partial, progress, target.name)
            partial.replace(target)
        finally:
            partial.unlink(missing_ok=True)
        return target

    async def image(
        self, cmap: str | None = None, vmin: float | None = None, vmax: float | None = None
    ) -> bytes:
        """The result as PNG bytes.

        >>> png = await job.image()
        """
        _http.result_info(await self._finished(None))
        params = {"format": "png", "cmap": cmap, "vmin": vmin, "vmax": vmax}
        given = {name: value for name, value in params.items() if value is not None}
        url = job_path(self.id, "result")
        return (await self._client._send("GET", url, params=given)).content

    async def cancel(self) -> None:
        """Cancel the job if it is queued or running; delete its result if it has ended.

        >>> await job.cancel()
        """
        await self._client._send("DELETE", job_path(self.id))

    async def url(self) -> str:
        """A signed, expiring download link of the .npy result.

        >>> await job.url()
        'http://127.0.0.1:8000/files/01J...?exp=...&sig=...'
        """
        response = await self._client._send("GET", job_path(self.id, "result", "url"))
        return response.json()["url"]

    async def _finished(self, timeout: float | None) -> dict[str, Any]:
        if self.document["status"] not in FINAL_STATUSES:
            await self.wait(timeout)
        return self.document


async def _read_events(response: httpx.Response, url: str, on_document: OnDocument) -> bool:
    if not response.headers.get("content-type", "").startswith("text/event-stream"):
        raise ArrayqError(f"{url} did not answer with an event stream")
    parser = EventParser()
    async for line in response.aiter_lines():
        event = parser.feed(line)
        if event is None:
            continue
        document = event.json()
        on_document(document)
        if document["status"] in FINAL_STATUSES:
            return True
    return False


async def _aiter(chunks: Iterable[Any]) -> AsyncIterator[Any]:
    for chunk in chunks:
        yield chunk


async def _checked(response: httpx.Response) -> httpx.Response:
    if response.status_code < 400:
        return response
    try:
        await response.aread()
    finally:
        await response.aclose()
    raise _http.error_of(response)


async def _save(response: httpx.Response, path: Path, progress: bool, label: str) -> None:
    length = response.headers.get("content-length")
    total = int(length) if length and length.isdigit() else None
    with path.open("wb") as file, download_bar(progress, label, total) as advance:
        async for chunk in response.aiter_bytes():
            file.write(chunk)
            advance(len(chunk))
