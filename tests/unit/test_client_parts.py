"""The client's pure parts: event parsing, error mapping, retry and redirect decisions,
command-line values."""

import hashlib
import hmac
from pathlib import Path

import httpx
import numpy as np
import orjson
import pytest
import typer

from arrayq.client import (
    ArrayqError,
    BadRequest,
    Expired,
    JobCancelled,
    JobFailed,
    NotFound,
    ServiceUnavailable,
    Timeout,
    Unauthorized,
    ValidationError,
    verify_signature,
)
from arrayq.client._console import param_text, parse_inputs, parse_params
from arrayq.client._errors import error_for
from arrayq.client._http import (
    Deadline,
    RetryPolicy,
    answered_early,
    check_final,
    download_format,
    is_safe,
    job_body,
    prefer_wait,
    preview_params,
    reference_of,
    same_origin,
    slice_text,
    wait_seconds,
)
from arrayq.client._sse import Event, EventParser


def feed_all(lines: list[str]) -> list[Event]:
    parser = EventParser()
    return [event for line in lines if (event := parser.feed(line)) is not None]


# server-sent events


def test_events_are_dispatched_at_blank_lines() -> None:
    lines = ["event: status", 'data: {"a": 1}', "", "event: progress", "data:2", ""]
    assert feed_all(lines) == [Event("status", '{"a": 1}'), Event("progress", "2")]


def test_comments_are_skipped_and_data_lines_joined() -> None:
    lines = [": keep-alive", "", "data: one", "data: two", ""]
    assert feed_all(lines) == [Event("message", "one\ntwo")]


def test_an_event_without_data_is_dropped_and_does_not_leak_its_name() -> None:
    assert feed_all(["event: status", "", "data: x", ""]) == [Event("message", "x")]


def test_event_json() -> None:
    assert Event("status", '{"status": "running"}').json() == {"status": "running"}


# errors


@pytest.mark.parametrize(
    ("status", "cls"),
    [
        (400, BadRequest),
        (401, Unauthorized),
        (403, Unauthorized),
        (404, NotFound),
        (409, BadRequest),
        (413, BadRequest),
        (422, ValidationError),
        (500, ArrayqError),
        (503, ServiceUnavailable),
    ],
)
def test_error_answers_map_to_classes(status: int, cls: type[ArrayqError]) -> None:
    body = {"error": {"type": "some_type", "message": "what went wrong"}, "job": {"id": "j"}}
    error = error_for(status, body)
    assert type(error) is cls
    assert (error.status, error.type, error.message) == (status, "some_type", "what went wrong")
    assert error.body["job"] == {"id": "j"}
    assert str(error) == f"what went wrong (HTTP {status} some_type)"


def test_an_error_answer_that_is_not_json_keeps_its_text() -> None:
    error = error_for(502, None, "Bad Gateway")
    assert (type(error), error.message, error.type) == (ArrayqError, "Bad Gateway", "http_error")


def test_job_failed_carries_the_document_and_the_error() -> None:
    document = {"id": "j", "status": "failed", "error": {"type": "ValueError", "message": "no"}}
    with pytest.raises(JobFailed) as raised:
        check_final(document)
    assert (raised.value.job, raised.value.error_type, raised.value.error_message) == (
        document,
        "ValueError",
        "no",
    )
    with pytest.raises(JobCancelled):
        check_final({"id": "j", "status": "cancelled"})
    check_final({"id": "j", "status": "succeeded"})


# retries, redirects, deadlines


def test_backoff_grows_and_stays_within_its_cap() -> None:
    policy = RetryPolicy(retries=10, base_seconds=0.5, max_seconds=3.0)
    for attempt in range(10):
        delay = policy.delay(attempt)
        assert 0 <= delay <= min(3.0, 0.5 * 2**attempt)


def test_retry_after_is_honoured_up_to_the_cap() -> None:
    policy = RetryPolicy(max_seconds=5.0)
    assert policy.delay(0, httpx.Response(503, headers={"Retry-After": "2"})) == 2.0
    assert policy.delay(0, httpx.Response(503, headers={"Retry-After": "60"})) == 5.0


def test_only_requests_never_sent_or_safe_to_repeat_are_retried() -> None:
    policy = RetryPolicy(retries=2)
    refused, dropped = httpx.ConnectError("refused"), httpx.ReadError("reset")
    assert policy.retry_error(0, refused, safe=False)
    assert not policy.retry_error(0, dropped, safe=False)
    assert policy.retry_error(1, dropped, safe=True)
    assert not policy.retry_error(2, refused, safe=True)


def test_503_is_retried_only_when_safe() -> None:
    policy = RetryPolicy(retries=1)
    assert policy.retry_response(0, httpx.Response(503), safe=True)
    assert not policy.retry_response(0, httpx.Response(503), safe=False)
    assert not policy.retry_response(0, httpx.Response(500), safe=True)
    assert not policy.retry_response(1, httpx.Response(503), safe=True)


def test_safe_methods_and_idempotent_posts() -> None:
    assert is_safe("GET", None) and is_safe("DELETE", {})
    assert not is_safe("POST", {"Content-Type": "application/json"})
    assert is_safe("POST", {"Idempotency-Key": "k"})


@pytest.mark.parametrize(
    ("url", "same"),
    [
        ("http://api.example:80/files/x", True),
        ("http://api.example/jobs/x/result?format=npy", True),
        ("https://api.example/x", False),
        ("http://api.example:9000/bucket/x", False),
        ("http://s3.example/bucket/x", False),
    ],
)
def test_same_origin(url: str, same: bool) -> None:
    assert same_origin(httpx.URL(url), httpx.URL("http://api.example")) is same


def test_deadline_pauses_at_most_what_is_left_then_times_out() -> None:
    assert Deadline(None).pause(1.5, "j") == 1.5
    assert Deadline(None).remaining() is None
    assert Deadline(60).pause(1.5, "j") == 1.5
    assert Deadline(0.2).pause(1.5, "j") <= 0.2
    with pytest.raises(Timeout, match="job j did not finish within 0 s"):
        Deadline(0).pause(1.5, "j")


def test_download_format_follows_the_extension() -> None:
    assert download_format("out.PNG") == "png"
    assert download_format("out.npy") == download_format("out") == "npy"
    assert download_format("all.NPZ", multi=True) == "npz"
    with pytest.raises(ValueError, match="several outputs"):
        download_format("out.npy", multi=True)
    with pytest.raises(ValueError, match=r"not \.npz"):
        download_format("out.npz")


# slices, previews, long polls


class Key:
    def __getitem__(self, key: object) -> object:
        return key


@pytest.mark.parametrize(
    ("key", "text"),
    [
        (Key()[0:10, ::2], "0:10, ::2"),
        (Key()[5], "5"),
        (Key()[:, 3:7], ":, 3:7"),
        (Key()[-3:], "-3:"),
        (Key()[1:-1:3, 0], "1:-1:3, 0"),
    ],
)
def test_slice_text_of_an_index(key: object, text: str) -> None:
    assert slice_text(key) == text


@pytest.mark.parametrize(
    "key", [Key()[..., 0], Key()[None], Key()[[1, 2]], Key()[1.5], Key()[True]]
)
def test_slice_text_refuses_what_the_server_cannot_slice(key: object) -> None:
    with pytest.raises(TypeError):
        slice_text(key)


def test_preview_takes_every_kth_row_and_column_of_a_large_picture() -> None:
    small = {"shape": [100, 200], "formats": ["npy", "png"]}
    assert preview_params(small) == {"format": "png"}
    large = {"shape": [1000, 600, 3], "formats": ["npy", "png"]}
    assert preview_params(large) == {"format": "png", "slice": "::4, ::3"}
    assert preview_params({"shape": [5, 5, 5], "formats": ["json", "npy"]}) is None


def test_long_polls_ask_for_what_is_left_of_the_deadline() -> None:
    assert wait_seconds(None) == 60
    assert wait_seconds(600) == 60
    assert wait_seconds(7.9) == 7
    assert wait_seconds(0.4) == 0
    assert prefer_wait(7) == {"Prefer": "wait=7"} and prefer_wait(0) == {}
    assert answered_early(0.05, 7) and answered_early(0.0, 0)
    assert not answered_early(6.9, 7)


def test_job_body_carries_the_options_given() -> None:
    body = orjson.loads(job_body("op", {}, {"x": {"job": "j"}}))
    assert body == {"op": "op", "params": {}, "inputs": {"x": {"job": "j"}}}
    full = job_body("op", {}, {}, cache=False, ttl_seconds=60, callback="https://h/x")
    assert orjson.loads(full) == {
        "op": "op",
        "params": {},
        "inputs": {},
        "cache": False,
        "ttl_seconds": 60,
        "callback": {"url": "https://h/x"},
    }


# webhook signatures


SECRET = "whsec-test"


def signed(body: bytes, at: int, secret: str = SECRET) -> dict[str, str]:
    mac = hmac.new(secret.encode(), f"{at}.".encode() + body, hashlib.sha256).hexdigest()
    return {"ArrayQ-Signature": f"t={at},v1={mac}"}


def test_a_good_signature_is_accepted_in_any_header_casing() -> None:
    body, now = b'{"id": "j"}', 1_700_000_000
    headers = signed(body, now)
    assert verify_signature(SECRET, headers, body, now=now + 10)
    lower = {key.lower(): value for key, value in headers.items()}
    assert verify_signature(SECRET.encode(), lower, body.decode(), now=now)


def test_a_wrong_secret_body_or_old_signature_is_refused() -> None:
    body, now = b'{"id": "j"}', 1_700_000_000
    assert not verify_signature("other", signed(body, now), body, now=now)
    assert not verify_signature(SECRET, signed(body, now), body + b" ", now=now)
    assert not verify_signature(SECRET, signed(body, now - 301), body, now=now)
    assert verify_signature(SECRET, signed(body, now - 301), body, now=now, tolerance=600)


@pytest.mark.parametrize("header", ["", "t=abc,v1=00", "v1=00", "t=1700000000", "garbage"])
def test_a_malformed_signature_header_is_refused(header: str) -> None:
    headers = {"ArrayQ-Signature": header} if header else {}
    assert not verify_signature(SECRET, headers, b"{}", now=1_700_000_000)


def test_any_of_several_v1_signatures_may_match() -> None:
    body, now = b"{}", 1_700_000_000
    good = signed(body, now)["ArrayQ-Signature"].split(",")[1]
    headers = {"ArrayQ-Signature": f"t={now},v1={'0' * 64},{good}"}
    assert verify_signature(SECRET, headers, body, now=now)


def test_an_expired_job_is_its_own_not_found() -> None:
    body = {"error": {"type": "expired", "message": "gone"}, "expired_at": "2026-01-01T00:00:00Z"}
    error = error_for(410, body)
    assert type(error) is Expired and isinstance(error, NotFound)
    assert error.expired_at == "2026-01-01T00:00:00Z"


# command-line values


def test_params_are_json_else_text() -> None:
    items = ["shape=[3, 4]", "seed=7", "dtype=float32", "sigma=1.5", "axis=null", "note=a=b"]
    assert parse_params(items) == {
        "shape": [3, 4],
        "seed": 7,
        "dtype": "float32",
        "sigma": 1.5,
        "axis": None,
        "note": "a=b",
    }


@pytest.mark.parametrize("item", ["shape", "=3", " =3"])
def test_params_without_a_name_are_usage_errors(item: str) -> None:
    with pytest.raises(typer.BadParameter):
        parse_params([item])


def test_inputs_from_npy_files_and_json_lists(tmp_path: Path) -> None:
    array = np.arange(6, dtype=np.uint8).reshape(2, 3)
    np.save(tmp_path / "a.npy", array)
    inputs = parse_inputs([f"a=@{tmp_path / 'a.npy'}", "b=[[1.5, 2], [3, 4]]"])
    assert inputs["a"].dtype == np.uint8 and np.array_equal(inputs["a"], array)
    assert inputs["b"].dtype == np.float64 and inputs["b"].shape == (2, 2)


@pytest.mark.parametrize("item", ["a=@/no/such/file.npy", "a=[1, 2", "a", "a=[[1], [2, 3]]"])
def test_bad_inputs_are_usage_errors(item: str) -> None:
    with pytest.raises(typer.BadParameter):
        parse_inputs([item])


def test_a_file_that_is_not_npy_is_a_usage_error(tmp_path: Path) -> None:
    (tmp_path / "x.npy").write_bytes(b"not a numpy file")
    with pytest.raises(typer.BadParameter, match=r"x\.npy"):
        parse_inputs([f"x=@{tmp_path / 'x.npy'}"])


def test_inputs_by_reference_to_other_jobs() -> None:
    inputs = parse_inputs(["a=job:j1", "b=job:j2:eigenvectors", "c=job:j3:v[0:10, ::2]"])
    assert [reference_of(value) for value in inputs.values()] == [
        {"job": "j1"},
        {"job": "j2", "output": "eigenvectors"},
        {"job": "j3", "output": "v", "slice": "0:10, ::2"},
    ]
    assert reference_of(parse_inputs(["d=job:j4[5]"])["d"]) == {"job": "j4", "slice": "5"}
    with pytest.raises(typer.BadParameter):
        parse_inputs(["e=job:"])


def test_param_text_shows_defaults_and_constraints() -> None:
    assert param_text("window", {"type": "integer", "minimum": 1, "default": 3}) == (
        "window=3 (window >= 1)"
    )
    assert param_text("sigma", {"exclusiveMinimum": 0, "maximum": 100}, True) == (
        "sigma (required; 0 < sigma <= 100)"
    )
    seed = {"anyOf": [{"type": "integer", "minimum": 0}, {"type": "null"}], "default": None}
    assert param_text("seed", seed) == "seed=null (seed >= 0)"
    shape = {"type": "array", "items": {"type": "integer", "minimum": 0}, "maxItems": 32}
    assert param_text("shape", shape) == "shape (len(shape) <= 32; shape[i] >= 0)"
    assert param_text("cmap", {"enum": ["viridis", "magma"], "default": "viridis"}) == (
        'cmap="viridis" (viridis | magma)'
    )
