"""The client's pure parts: event parsing, error mapping, retry and redirect decisions,
command-line values."""

from pathlib import Path

import httpx
import numpy as np
import pytest
import typer

from arrayq.client import (
    ArrayqError,
    BadRequest,
    JobCancelled,
    JobFailed,
    NotFound,
    ServiceUnavailable,
    Timeout,
    Unauthorized,
    ValidationError,
)
from arrayq.client._console import parse_inputs, parse_params
from arrayq.client._errors import error_for
from arrayq.client._http import (
    Deadline,
    RetryPolicy,
    check_final,
    download_format,
    is_safe,
    same_origin,
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
