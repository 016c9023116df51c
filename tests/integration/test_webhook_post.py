"""One try of a delivery against a real receiver on loopback: the address is
checked at the try itself, and the request goes to the checked address with the
host's name in the Host header."""

from collections.abc import Iterator

import pytest

from arrayq.client.processes import free_port
from arrayq.storage.callback_address import AllowList
from arrayq.worker.webhook_post import delivery_headers, post
from tests.support.webhook_receiver import Receiver, receiver

SECRET = "whsec-post"


@pytest.fixture(scope="module")
def sink() -> Iterator[Receiver]:
    with receiver() as server:
        yield server


def headers(body: bytes) -> dict[str, str]:
    return delivery_headers(SECRET, body, "succeeded", "a" * 32)


def test_an_address_not_allowed_at_the_try_is_not_contacted(sink):
    answer = post(sink.answer("/refused", 200), b"{}", headers(b"{}"), AllowList())
    assert answer.refused and answer.status_code is None and "loopback" in (answer.error or "")
    assert sink.requests("/refused") == []


def test_a_name_is_resolved_checked_and_reached_at_its_address(sink):
    url = f"http://localhost:{sink.port}/named"
    sink.answer("/named", 200)
    allow = AllowList.parse("localhost")
    answer = post(url, b'{"id": 1}', headers(b'{"id": 1}'), allow)
    assert answer.status_code == 200, answer
    (received,) = sink.requests("/named")
    assert received.headers["Host"] == f"localhost:{sink.port}"
    assert received.body == b'{"id": 1}'


def test_nothing_listening_is_an_answer_to_try_again():
    url = f"http://127.0.0.1:{free_port()}/"
    answer = post(url, b"{}", headers(b"{}"), AllowList.parse("127.0.0.1"))
    assert answer.status_code is None and not answer.refused
    assert (answer.error or "").startswith("ConnectError")
