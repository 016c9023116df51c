"""How a job and an output show themselves: `repr`, and in a notebook HTML with
a small PNG preview. Shared by the sync and async classes, so what it fetches
it fetches with a short blocking request of its own (a repr cannot await)."""

import base64
import html
from typing import Any

import httpx

from arrayq.client import _http
from arrayq.client._http import FINAL_STATUSES, job_path

PEEK_TIMEOUT = 3.0
MAX_PREVIEWS = 4


def peek(client: Any, path: str, params: dict[str, str] | None = None) -> httpx.Response | None:
    """A GET for a repr: None on any failure, so that showing a job never raises."""
    try:
        response = httpx.get(
            f"{client.base_url}{path}",
            params=params,
            headers=client._headers,
            timeout=PEEK_TIMEOUT,
        )
    except httpx.HTTPError:
        return None
    return response if response.status_code == 200 else None


class JobView:
    """`repr`, `_repr_html_` and `_repr_png_` of a job from its `document`,
    fetched again first unless it is final already."""

    _client: Any
    document: dict[str, Any]

    def _current(self) -> dict[str, Any]:
        if self.document["status"] not in FINAL_STATUSES:
            response = peek(self._client, job_path(self.document["id"]))
            if response is not None:
                self.document = response.json()
        return self.document

    def __repr__(self) -> str:
        document = self._current()
        name = type(self).__name__
        progress = _progress_text(document)
        return f"<{name} {document['id']} {document.get('op')} {document['status']}{progress}>"

    def _repr_html_(self) -> str:
        document = self._current()
        rows = [
            ("job", f"<code>{_e(document['id'])}</code>"),
            ("op", _e(document.get("op"))),
            ("status", _status_html(document)),
        ]
        rows += _result_rows(document)
        table = "".join(f"<tr><th>{head}</th><td>{cell}</td></tr>" for head, cell in rows)
        previews = "".join(self._previews(document))
        return f'<div class="arrayq-job"><table>{table}</table>{previews}</div>'

    def _repr_png_(self) -> bytes | None:
        document = self._current()
        result = document.get("result") or {}
        if document["status"] != "succeeded" or result.get("kind") != "image":
            return None
        response = peek(self._client, job_path(document["id"], "result"), {"format": "png"})
        return response.content if response is not None else None

    def _previews(self, document: dict[str, Any]) -> list[str]:
        if document["status"] != "succeeded" or not document.get("result"):
            return []
        shown = []
        for name, path, info in _pictures(document)[:MAX_PREVIEWS]:
            params = _http.preview_params(info)
            response = peek(self._client, path, params) if params else None
            if response is not None and response.content.startswith(b"\x89PNG"):
                shown.append(_figure(name, response.content))
        return shown


class OutputView:
    """`repr` of one output of a job, and its URL paths."""

    job: Any
    name: str
    slice: str | None

    def __repr__(self) -> str:
        sliced = f"[{self.slice}]" if self.slice is not None else ""
        return f"<{type(self).__name__} {self.name}{sliced} of job {self.job.id}>"

    def _single(self) -> bool:
        result = self.job.document.get("result") or {}
        return self.name == "result" and result.get("kind") != "outputs"

    def _path(self) -> str:
        if self._single():
            return job_path(self.job.id, "result")
        return job_path(self.job.id, "outputs", self.name)

    def _reference_name(self) -> str | None:
        """None for the only output of a job: `{"job": id}` names it."""
        return None if self.name == "result" else self.name


def _pictures(document: dict[str, Any]) -> list[tuple[str | None, str, dict[str, Any]]]:
    result = document["result"]
    if result.get("kind") != "outputs":
        return [(None, job_path(document["id"], "result"), result)]
    return [
        (name, job_path(document["id"], "outputs", name), info)
        for name, info in result.get("outputs", {}).items()
        if "png" in info.get("formats", ())
    ]


def _result_rows(document: dict[str, Any]) -> list[tuple[str, str]]:
    result = document.get("result")
    error = document.get("error")
    if error:
        return [("error", f"{_e(error.get('type'))}: {_e(error.get('message'))}")]
    if not result:
        return []
    if result.get("kind") != "outputs":
        return [("result", _array_text(result))]
    return [
        (f"output <code>{_e(name)}</code>", _array_text(info))
        for name, info in result.get("outputs", {}).items()
    ]


def _array_text(info: dict[str, Any]) -> str:
    shape = " \N{MULTIPLICATION SIGN} ".join(str(size) for size in info.get("shape", []))
    return _e(f"{info.get('dtype')} ({shape or 'scalar'}) {info.get('kind', '')}".rstrip())


def _status_html(document: dict[str, Any]) -> str:
    progress = float(document.get("progress") or 0.0)
    if document["status"] == "succeeded":
        progress = 1.0
    bar = f'<progress value="{progress:.3f}" max="1"></progress> {100 * progress:.0f}%'
    return f"{_e(document['status'])} {bar}"


def _progress_text(document: dict[str, Any]) -> str:
    if document["status"] != "running":
        return ""
    return f" {100 * float(document.get('progress') or 0.0):.0f}%"


def _figure(name: str | None, png: bytes) -> str:
    data = base64.b64encode(png).decode("ascii")
    caption = f"<figcaption><code>{_e(name)}</code></figcaption>" if name else ""
    image = f'<img src="data:image/png;base64,{data}" style="image-rendering: pixelated">'
    return f'<figure style="display:inline-block;margin:4px">{image}{caption}</figure>'


def _e(value: object) -> str:
    return html.escape(str(value))
