"""The pure parts of webhooks: signature (server's against the client's check),
callback address policy, and the retry decisions."""

import ipaddress

import pytest

from arrayq import verify_signature
from arrayq.storage.callback_address import (
    AllowList,
    checked_addresses,
    forbidden_reason,
    parse_url,
)
from arrayq.storage.errors import InvalidCallback
from arrayq.storage.webhook_signature import signature_header
from arrayq.storage.webhooks import delivery_states
from arrayq.worker.webhook_post import Answer, backoff_seconds, delivery_headers, next_step

SECRET = "whsec-unit"


def test_the_client_verifies_what_the_server_signs() -> None:
    body = b'{"id": "abc", "status": "succeeded"}'
    headers = delivery_headers(SECRET, body, "succeeded", "d" * 32, now=1_700_000_000)
    assert headers["ArrayQ-Event"] == "succeeded" and headers["ArrayQ-Delivery"] == "d" * 32
    assert verify_signature(SECRET, headers, body, now=1_700_000_005)
    assert not verify_signature("other", headers, body, now=1_700_000_005)
    assert not verify_signature(SECRET, headers, body + b" ", now=1_700_000_005)
    assert not verify_signature(SECRET, headers, body, now=1_700_000_000 + 301)


def test_the_signature_header_has_its_time_and_one_v1() -> None:
    value = signature_header(SECRET, b"{}", now=1_700_000_000.9)
    t, v1 = value.split(",")
    assert t == "t=1700000000" and v1.startswith("v1=") and len(v1) == 3 + 64


@pytest.mark.parametrize(
    "address",
    [
        "127.0.0.1",
        "127.0.0.2",
        "10.0.0.1",
        "172.16.5.4",
        "192.168.1.1",
        "169.254.169.254",
        "0.0.0.0",
        "224.0.0.1",
        "239.255.255.250",
        "100.64.0.1",
        "::1",
        "::",
        "fe80::1",
        "fc00::1",
        "ff02::1",
        "::ffff:127.0.0.1",
        "::ffff:10.0.0.1",
        "::ffff:169.254.169.254",
    ],
)
def test_internal_addresses_are_forbidden(address: str) -> None:
    assert forbidden_reason(ipaddress.ip_address(address)) is not None


@pytest.mark.parametrize("address", ["8.8.8.8", "1.1.1.1", "2606:4700:4700::1111"])
def test_public_addresses_are_allowed(address: str) -> None:
    assert forbidden_reason(ipaddress.ip_address(address)) is None


@pytest.mark.parametrize(
    "url",
    [
        "ftp://example.org/x",
        "garbage",
        "",
        "http://",
        "http:///path",
        "https://exa mple.org/",
        "http://user:pw@example.org/",
        "http://example.org:99999/",
        "http://-bad-.example/",
        "javascript:alert(1)",
        "http://ex\nample.org/",
        "http://[::1/",
    ],
)
def test_urls_that_are_not_http_or_garbage_are_refused(url: str) -> None:
    with pytest.raises(InvalidCallback):
        parse_url(url)


def test_a_url_is_taken_apart() -> None:
    target = parse_url("https://Hooks.Example.org/in?x=1")
    assert (target.scheme, target.host, target.port, target.path) == (
        "https",
        "hooks.example.org",
        443,
        "/in?x=1",
    )
    assert target.host_header == "hooks.example.org"
    v6 = parse_url("http://[2606:4700::1]:8080")
    assert v6.host == "2606:4700::1" and v6.path == "/" and v6.host_header == "[2606:4700::1]:8080"
    assert v6.url_for(ipaddress.ip_address("2606:4700::1")) == "http://[2606:4700::1]:8080/"


def test_the_allow_list_takes_hosts_addresses_and_networks() -> None:
    allow = AllowList.parse(" 127.0.0.1, receiver.internal ,10.1.0.0/16,[::1]")
    loopback = ipaddress.ip_address("127.0.0.1")
    assert allow.allows("127.0.0.1", loopback)
    assert allow.allows("localhost", loopback)  # the address is listed
    assert not allow.allows("127.0.0.2", ipaddress.ip_address("127.0.0.2"))
    assert allow.allows("receiver.internal", ipaddress.ip_address("192.168.0.9"))
    assert allow.allows("x", ipaddress.ip_address("10.1.200.3"))
    assert not allow.allows("x", ipaddress.ip_address("10.2.0.1"))
    assert allow.allows("::1", ipaddress.ip_address("::1"))
    assert AllowList.parse(None) == AllowList()


def test_one_internal_address_among_public_ones_refuses_the_host() -> None:
    target = parse_url("http://mixed.example.org/")
    public, internal = ipaddress.ip_address("8.8.8.8"), ipaddress.ip_address("10.0.0.1")
    assert checked_addresses(target, [public], AllowList()) == [public]
    with pytest.raises(InvalidCallback, match="private"):
        checked_addresses(target, [public, internal], AllowList())
    allow = AllowList.parse("10.0.0.0/8")
    assert checked_addresses(target, [public, internal], allow) == [public, internal]


@pytest.mark.parametrize(
    ("answer", "attempts", "step"),
    [
        (Answer(200), 1, "delivered"),
        (Answer(204), 8, "delivered"),
        (Answer(500), 1, "retry"),
        (Answer(503), 7, "retry"),
        (Answer(503), 8, "failed"),
        (Answer(429), 1, "retry"),
        (Answer(None, "ConnectError"), 1, "retry"),
        (Answer(None, "ReadTimeout"), 8, "failed"),
        (Answer(410), 1, "failed"),
        (Answer(404), 1, "failed"),
        (Answer(302), 1, "failed"),
        (Answer(None, "loopback", refused=True), 1, "failed"),
    ],
)
def test_what_follows_an_answer(answer: Answer, attempts: int, step: str) -> None:
    assert next_step(answer, attempts, max_attempts=8) == step


def test_the_pause_doubles_from_the_first() -> None:
    assert [backoff_seconds(n, 1.0) for n in range(1, 6)] == [1.0, 2.0, 4.0, 8.0, 16.0]
    assert backoff_seconds(2, 0.25) == 0.5
    assert backoff_seconds(40, 1.0) == 3600.0


def test_delivery_states_from_the_record() -> None:
    fields = {"wh:succeeded": "delivered|3|200", "wh:running": "pending|0|", "other": "x"}
    assert delivery_states(fields) == {
        "running": {"status": "pending", "attempts": 0, "last_status_code": None},
        "succeeded": {"status": "delivered", "attempts": 3, "last_status_code": 200},
    }
