"""Malformed requests of every kind, each with its exact status and error type,
and after each a check that the jobs and results already there are untouched."""

import io
from dataclasses import dataclass, field
from typing import Any

import httpx
import numpy as np
import orjson
import pytest

from tests.support.jobs import run

SMALL, LARGE, VECTOR = "{small}", "{large}", "{vector}"
UNKNOWN_ID = "0" * 32
JSON = {"Content-Type": "application/json"}
NPY = {"Content-Type": "application/x-npy"}


@dataclass(frozen=True)
class Case:
    id: str
    method: str
    target: str  # raw path and query, sent as is; {small}, {large}, {vector}: job ids
    status: int
    error: str | None  # the JSON error type; None for a success
    body: bytes | None = None
    headers: dict[str, str] = field(default_factory=dict)


def job_body(document: Any) -> bytes:
    return orjson.dumps(document)


def svd_input(array: dict[str, Any]) -> bytes:
    return job_body({"op": "svd", "inputs": {"x": array}})


def npy_bytes(array: np.ndarray, **save: Any) -> bytes:
    buffer = io.BytesIO()
    np.save(buffer, array, **save)
    return buffer.getvalue()


def npy_declaring(shape: tuple[int, ...], descr: str = "<f8") -> bytes:
    """A .npy preamble and header only, declaring `shape`."""
    header = f"{{'descr': '{descr}', 'fortran_order': False, 'shape': {shape!r}, }}"
    header = header.ljust(118) + "\n"
    return b"\x93NUMPY\x01\x00" + len(header).to_bytes(2, "little") + header.encode()


def nested(depth: int) -> bytes:
    return b"[" * depth + b"1.0" + b"]" * depth


FLOATS_2 = {"dtype": "float64", "shape": [2], "data": [1.0, 2.0]}

CASES = [
    # the job body: JSON and its structure
    Case("not-json", "POST", "/jobs", 400, "invalid_json", b"{not json", JSON),
    Case("empty-body", "POST", "/jobs", 400, "invalid_json", b"", JSON),
    Case("nan-literal", "POST", "/jobs", 400, "invalid_json", b'{"op": "svd", "x": NaN}', JSON),
    Case("huge-number", "POST", "/jobs", 400, "invalid_json", b'{"op": 1e400}', JSON),
    Case("body-is-list", "POST", "/jobs", 422, "validation_error", b"[1, 2]", JSON),
    Case("body-is-null", "POST", "/jobs", 422, "validation_error", b"null", JSON),
    Case("op-not-string", "POST", "/jobs", 422, "validation_error", job_body({"op": 5}), JSON),
    Case("op-empty", "POST", "/jobs", 422, "validation_error", job_body({"op": ""}), JSON),
    Case(
        "inputs-is-list",
        "POST",
        "/jobs",
        422,
        "validation_error",
        job_body({"op": "svd", "inputs": []}),
        JSON,
    ),
    Case(
        "unknown-top-field",
        "POST",
        "/jobs",
        422,
        "validation_error",
        job_body({"op": "svd", "extra": 1}),
        JSON,
    ),
    Case("unknown-op", "POST", "/jobs", 422, "unknown_op", job_body({"op": "nope"}), JSON),
    Case(
        "op-path-trick",
        "POST",
        "/jobs",
        422,
        "unknown_op",
        job_body({"op": "../worker/ops"}),
        JSON,
    ),
    Case(
        "wrong-content-type",
        "POST",
        "/jobs",
        415,
        "unsupported_media_type",
        b"op=svd",
        {"Content-Type": "text/plain"},
    ),
    Case(
        "too-deep",
        "POST",
        "/jobs",
        400,
        "json_too_deep",
        b'{"op": "svd", "inputs": {"x": {"dtype": "float64", "shape": [1], "data": '
        + nested(100)
        + b"}}}",
        JSON,
    ),
    Case("deep-1000", "POST", "/jobs", 400, "json_too_deep", nested(1000), JSON),
    Case(
        "deep-with-idempotency-key",
        "POST",
        "/jobs",
        400,
        "json_too_deep",
        b'{"op": "svd", "inputs": {"x": {"dtype": "float64", "shape": [1], "data": '
        + nested(300)
        + b"}}}",
        {**JSON, "Idempotency-Key": "deep"},
    ),
    Case("deeper-than-the-parser", "POST", "/jobs", 400, "invalid_json", nested(10_000), JSON),
    Case(
        "idempotency-key-too-long",
        "POST",
        "/jobs",
        422,
        "validation_error",
        job_body({"op": "svd", "inputs": {"x": FLOATS_2}}),
        {**JSON, "Idempotency-Key": "k" * 300},
    ),
    # params
    Case(
        "negative-dim-param",
        "POST",
        "/jobs",
        422,
        "invalid_params",
        job_body({"op": "random", "params": {"shape": [-1]}}),
        JSON,
    ),
    Case(
        "unknown-param",
        "POST",
        "/jobs",
        422,
        "invalid_params",
        job_body({"op": "random", "params": {"shape": [2], "bogus": 1}}),
        JSON,
    ),
    Case(
        "param-wrong-type",
        "POST",
        "/jobs",
        422,
        "invalid_params",
        job_body({"op": "random", "params": {"shape": "big"}}),
        JSON,
    ),
    Case(
        "nan-param",
        "POST",
        "/jobs",
        422,
        "invalid_params",
        job_body({"op": "mandelbrot", "params": {"x_min": "NaN"}}),
        JSON,
    ),
    Case(
        "infinite-param",
        "POST",
        "/jobs",
        422,
        "invalid_params",
        job_body({"op": "gaussian_blur", "params": {"sigma": "Infinity"}}),
        JSON,
    ),
    Case(
        "shape-bomb-param",
        "POST",
        "/jobs",
        413,
        "too_large",
        job_body({"op": "random", "params": {"shape": [100000, 100000]}}),
        JSON,
    ),
    # input arrays
    Case(
        "missing-input",
        "POST",
        "/jobs",
        422,
        "invalid_inputs",
        job_body({"op": "svd", "inputs": {}}),
        JSON,
    ),
    Case(
        "unknown-input",
        "POST",
        "/jobs",
        422,
        "invalid_inputs",
        job_body({"op": "svd", "inputs": {"x": FLOATS_2, "y": FLOATS_2}}),
        JSON,
    ),
    Case(
        "object-dtype",
        "POST",
        "/jobs",
        422,
        "unsupported_dtype",
        svd_input({"dtype": "object", "shape": [1], "data": [1]}),
        JSON,
    ),
    Case(
        "dtype-alias",
        "POST",
        "/jobs",
        422,
        "unsupported_dtype",
        svd_input({"dtype": "f8", "shape": [1], "data": [1.0]}),
        JSON,
    ),
    Case(
        "negative-dim-input",
        "POST",
        "/jobs",
        422,
        "invalid_array",
        svd_input({"dtype": "float64", "shape": [-2, 2], "data": []}),
        JSON,
    ),
    Case(
        "too-many-dims",
        "POST",
        "/jobs",
        422,
        "invalid_array",
        svd_input({"dtype": "float64", "shape": [1] * 33, "data": nested(0).decode()}),
        JSON,
    ),
    Case(
        "huge-declared-shape",
        "POST",
        "/jobs",
        413,
        "too_large",
        svd_input({"dtype": "float64", "shape": [10**6, 10**6], "data": []}),
        JSON,
    ),
    Case(
        "beyond-uint64-shape",
        "POST",
        "/jobs",
        422,
        "validation_error",
        b'{"op": "svd", "inputs": {"x": {"dtype": "uint8", "shape": [184467440737095516160], '
        b'"data": []}}}',
        JSON,
    ),
    Case(
        "data-short-of-shape",
        "POST",
        "/jobs",
        422,
        "invalid_array",
        svd_input({"dtype": "float64", "shape": [3], "data": [1, 2]}),
        JSON,
    ),
    Case(
        "ragged-data",
        "POST",
        "/jobs",
        422,
        "invalid_array",
        svd_input({"dtype": "float64", "shape": [2, 2], "data": [[1, 2], [3]]}),
        JSON,
    ),
    Case(
        "string-in-floats",
        "POST",
        "/jobs",
        422,
        "invalid_array",
        svd_input({"dtype": "float64", "shape": [2], "data": [1.0, "nan"]}),
        JSON,
    ),
    Case(
        "bool-in-ints",
        "POST",
        "/jobs",
        422,
        "invalid_array",
        svd_input({"dtype": "int32", "shape": [2], "data": [True, 1]}),
        JSON,
    ),
    Case(
        "int-out-of-range",
        "POST",
        "/jobs",
        422,
        "invalid_array",
        svd_input({"dtype": "uint8", "shape": [1], "data": [256]}),
        JSON,
    ),
    Case(
        "bad-base64",
        "POST",
        "/jobs",
        422,
        "invalid_array",
        svd_input({"dtype": "float64", "shape": [1], "base64": "********"}),
        JSON,
    ),
    Case(
        "data-and-base64",
        "POST",
        "/jobs",
        422,
        "invalid_array",
        svd_input({"dtype": "float64", "shape": [1], "data": [1.0], "base64": "AAAAAAAA8D8="}),
        JSON,
    ),
    Case(
        "unknown-array-field",
        "POST",
        "/jobs",
        422,
        "validation_error",
        svd_input({**FLOATS_2, "order": "F"}),
        JSON,
    ),
    Case(
        "upload-path-trick",
        "POST",
        "/jobs",
        404,
        "not_found",
        svd_input({"upload": "../../etc/passwd"}),
        JSON,
    ),
    Case(
        "unknown-upload",
        "POST",
        "/jobs",
        404,
        "not_found",
        svd_input({"upload": UNKNOWN_ID}),
        JSON,
    ),
    # listing
    Case("limit-zero", "GET", "/jobs?limit=0", 422, "validation_error"),
    Case("limit-over-max", "GET", "/jobs?limit=1001", 422, "validation_error"),
    Case("limit-not-int", "GET", "/jobs?limit=ten", 422, "validation_error"),
    Case("status-unknown", "GET", "/jobs?status=lost", 422, "validation_error"),
    Case("cursor-garbage", "GET", "/jobs?cursor=abc", 422, "invalid_cursor"),
    Case("cursor-negative", "GET", "/jobs?cursor=-1", 422, "invalid_cursor"),
    Case("cursor-too-long", "GET", "/jobs?cursor=" + "9" * 30, 422, "validation_error"),
    Case("unknown-query-param", "GET", "/jobs?colour=blue", 200, None),
    # ids and paths
    Case("id-not-hex", "GET", "/jobs/not-an-id", 404, "not_found"),
    Case("id-unknown", "GET", f"/jobs/{UNKNOWN_ID}", 404, "not_found"),
    Case("id-very-long", "GET", "/jobs/" + "a" * 8000, 404, "not_found"),
    Case("id-uppercase", "GET", "/jobs/{small_upper}", 404, "not_found"),
    Case("id-with-nul", "GET", f"/jobs/{SMALL}%00", 404, "not_found"),
    Case("dotdot", "GET", "/jobs/../../../etc/passwd", 404, "not_found"),
    Case("encoded-dotdot", "GET", "/jobs/%2e%2e", 404, "not_found"),
    Case("encoded-slashes", "GET", "/jobs/..%2F..%2Fetc%2Fpasswd", 404, "not_found"),
    Case("dotdot-result", "GET", "/jobs/%2e%2e/result", 404, "not_found"),
    Case("dotdot-events", "GET", "/jobs/%2e%2e%2f/events", 404, "not_found"),
    Case("delete-bad-id", "DELETE", "/jobs/%2e%2e", 404, "not_found"),
    Case("result-url-bad-id", "GET", "/jobs/..%2F/result/url", 404, "not_found"),
    Case("op-unknown", "GET", "/ops/%2e%2e", 404, "unknown_op"),
    Case("op-path-slashes", "GET", "/ops/..%2Fjobs", 404, "not_found"),
    Case("unknown-route", "GET", "/admin", 404, "not_found"),
    Case("put-job", "PUT", f"/jobs/{SMALL}", 405, "method_not_allowed"),
    Case("post-job", "POST", f"/jobs/{SMALL}", 405, "method_not_allowed"),
    Case("patch-jobs", "PATCH", "/jobs", 405, "method_not_allowed"),
    # result negotiation
    Case(
        "accept-html",
        "GET",
        f"/jobs/{SMALL}/result",
        406,
        "not_acceptable",
        headers={"Accept": "text/html"},
    ),
    Case("format-unknown", "GET", f"/jobs/{SMALL}/result?format=xml", 406, "not_acceptable"),
    Case(
        "format-too-long", "GET", f"/jobs/{SMALL}/result?format={'x' * 50}", 422, "validation_error"
    ),
    Case(
        "accept-garbage",
        "GET",
        f"/jobs/{SMALL}/result",
        406,
        "not_acceptable",
        headers={"Accept": ";;;,,q=abc"},
    ),
    Case(
        "png-of-vector",
        "GET",
        f"/jobs/{VECTOR}/result",
        406,
        "not_acceptable",
        headers={"Accept": "image/png"},
    ),
    Case("json-of-large", "GET", f"/jobs/{LARGE}/result?format=json", 406, "not_acceptable"),
    Case(
        "cmap-unknown",
        "GET",
        f"/jobs/{SMALL}/result?format=png&cmap=nope",
        422,
        "invalid_render_options",
    ),
    Case(
        "vmin-not-number",
        "GET",
        f"/jobs/{SMALL}/result?format=png&vmin=low",
        422,
        "validation_error",
    ),
    Case(
        "redirect-not-bool",
        "GET",
        f"/jobs/{LARGE}/result?format=npy&redirect=maybe",
        422,
        "validation_error",
    ),
    Case(
        "json-doc-ignores-accept",
        "GET",
        f"/jobs/{SMALL}",
        200,
        None,
        headers={"Accept": "text/html"},
    ),
    # slices: ASCII only, nothing of them reaches a response header
    Case(
        "slice-full-width-digits",
        "GET",
        f"/jobs/{SMALL}/result?slice=%EF%BC%90:%EF%BC%91",
        422,
        "invalid_slice",
    ),
    Case("slice-crlf", "GET", f"/jobs/{SMALL}/result?slice=0:1,0:2%0D%0A", 422, "invalid_slice"),
    Case("slice-lf-only", "GET", f"/jobs/{SMALL}/result?slice=0:1%0A", 422, "invalid_slice"),
    Case("slice-nul", "GET", f"/jobs/{SMALL}/result?slice=0:1%00", 422, "invalid_slice"),
    Case(
        "slice-arabic-indic-digits",
        "GET",
        f"/jobs/{SMALL}/result?slice=%D9%A1:%D9%A3",
        422,
        "invalid_slice",
    ),
    Case("slice-spaces-ok", "GET", f"/jobs/{SMALL}/result?slice=%200%20:%202%20", 200, None),
    # byte ranges of the .npy
    Case(
        "range-not-numbers",
        "GET",
        f"/jobs/{LARGE}/result?format=npy",
        400,
        "invalid_range",
        headers={"Range": "bytes=abc"},
    ),
    Case(
        "range-backwards",
        "GET",
        f"/jobs/{LARGE}/result?format=npy",
        400,
        "invalid_range",
        headers={"Range": "bytes=5-1"},
    ),
    Case(
        "range-past-end",
        "GET",
        f"/jobs/{LARGE}/result?format=npy",
        416,
        "range_not_satisfiable",
        headers={"Range": "bytes=999999999-"},
    ),
    Case(
        "range-wrong-unit",
        "GET",
        f"/jobs/{LARGE}/result?format=npy",
        400,
        "invalid_range",
        headers={"Range": "items=0-5"},
    ),
    Case(
        "range-empty",
        "GET",
        f"/jobs/{LARGE}/result?format=npy",
        400,
        "invalid_range",
        headers={"Range": "bytes="},
    ),
    Case(
        "range-multiple",
        "GET",
        f"/jobs/{LARGE}/result?format=npy",
        206,
        None,
        headers={"Range": "bytes=0-9,100-109"},
    ),
    # signed links
    Case("files-no-signature", "GET", f"/files/{LARGE}", 422, "validation_error"),
    Case("files-exp-not-int", "GET", f"/files/{LARGE}?exp=soon&sig=00", 422, "validation_error"),
    Case("files-bad-signature", "GET", f"/files/{LARGE}?exp=99999999999&sig=00", 403, "forbidden"),
    Case("files-huge-exp", "GET", f"/files/{LARGE}?exp={10**40}&sig=00", 403, "forbidden"),
    Case("files-path-trick", "GET", "/files/..%2F..%2Fetc%2Fpasswd?exp=1&sig=00", 404, "not_found"),
    Case("files-dotdot", "GET", "/files/%2e%2e?exp=99999999999&sig=00", 403, "forbidden"),
    # uploads
    Case(
        "upload-as-json",
        "POST",
        "/uploads",
        415,
        "unsupported_media_type",
        npy_bytes(np.ones(3)),
        JSON,
    ),
    Case(
        "upload-no-type", "POST", "/uploads", 415, "unsupported_media_type", npy_bytes(np.ones(3))
    ),
    Case("upload-not-npy", "POST", "/uploads", 422, "invalid_array", b"hello world, " * 10, NPY),
    Case("upload-empty", "POST", "/uploads", 422, "invalid_array", b"", NPY),
    Case(
        "upload-truncated",
        "POST",
        "/uploads",
        422,
        "invalid_array",
        npy_bytes(np.ones(100))[:-10],
        NPY,
    ),
    Case(
        "upload-too-long",
        "POST",
        "/uploads",
        422,
        "invalid_array",
        npy_bytes(np.ones(100)) + b"extra",
        NPY,
    ),
    Case(
        "upload-pickled-objects",
        "POST",
        "/uploads",
        422,
        "unsupported_dtype",
        npy_bytes(np.array([{"a": 1}], dtype=object), allow_pickle=True),
        NPY,
    ),
    Case(
        "upload-shape-bomb",
        "POST",
        "/uploads",
        413,
        "too_large",
        npy_declaring((10**6, 10**6)),
        NPY,
    ),
    Case(
        "upload-negative-dim", "POST", "/uploads", 422, "invalid_array", npy_declaring((-1, 4)), NPY
    ),
]


@pytest.fixture(scope="module")
def http(service) -> httpx.Client:
    with service.client() as client:
        yield client


@pytest.fixture(scope="module")
def baseline(http) -> dict[str, Any]:
    """Finished jobs whose documents and result bytes must survive every case."""
    jobs = {
        "small": run(http, "random", {"shape": [20, 30], "seed": 11}),
        "large": run(http, "random", {"shape": [400, 400], "seed": 12}),  # over the inline limit
        "vector": run(http, "svd", x=np.eye(3)),
    }
    return {name: (job["id"], snapshot(http, job["id"])) for name, job in jobs.items()}


def snapshot(http: httpx.Client, job_id: str) -> tuple[dict[str, Any], bytes]:
    document = http.get(f"/jobs/{job_id}")
    result = http.get(f"/jobs/{job_id}/result?format=npy")
    assert document.status_code == 200 and result.status_code == 200
    return document.json(), result.content


def send(http: httpx.Client, case: Case, ids: dict[str, str]) -> httpx.Response:
    target = case.target.format(**ids)
    url = http.base_url.copy_with(raw_path=target.encode())
    request = http.build_request(case.method, url, content=case.body, headers=case.headers)
    return http.send(request)


def test_the_matrix_is_large_enough():
    assert len(CASES) >= 40
    assert len({case.id for case in CASES}) == len(CASES)


@pytest.mark.parametrize("case", CASES, ids=lambda case: case.id)
def test_bad_input_gets_its_status_and_harms_nothing(http, baseline, case):
    ids = {name: job_id for name, (job_id, _) in baseline.items()}
    ids["small_upper"] = ids["small"].upper()
    response = send(http, case, ids)
    assert response.status_code == case.status, response.text[:500]
    if case.error is not None:
        error = response.json()["error"]
        assert error["type"] == case.error, error
        assert error["message"]
    for job_id, before in baseline.values():
        assert snapshot(http, job_id) == before
