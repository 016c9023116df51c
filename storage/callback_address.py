"""Where a webhook may be sent: http(s) URLs whose host resolves only to public
addresses, unless ARRAYQ_WEBHOOK_ALLOW_HOSTS allows it (a defence against SSRF).

The API checks a callback URL when the job is submitted, and the worker checks it
again at each delivery and connects to the very address it checked, so a name that
resolves elsewhere later (DNS rebinding) reaches no internal service.
"""

import ipaddress
import re
import socket
from dataclasses import dataclass
from urllib.parse import SplitResult, urlsplit

from arrayq.storage.errors import InvalidCallback

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network
MAX_URL_LENGTH = 2048
_DEFAULT_PORTS = {"http": 80, "https": 443}
_LABEL = re.compile(r"^(?!-)[a-z0-9-]{1,63}(?<!-)$")


class Unresolvable(Exception):
    """The host name has no address now (perhaps for a moment)."""


@dataclass(frozen=True)
class Target:
    """A callback URL taken apart."""

    scheme: str
    host: str  # a lower-case name, or an address without brackets
    port: int
    path: str  # with the query

    @property
    def host_header(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return host if self.port == _DEFAULT_PORTS[self.scheme] else f"{host}:{self.port}"

    def url_for(self, address: IPAddress) -> str:
        """The URL that reaches `address` directly (the Host header names the host)."""
        host = f"[{address}]" if address.version == 6 else str(address)
        return f"{self.scheme}://{host}:{self.port}{self.path}"


@dataclass(frozen=True)
class AllowList:
    """ARRAYQ_WEBHOOK_ALLOW_HOSTS: host names, addresses and networks."""

    names: frozenset[str] = frozenset()
    networks: tuple[IPNetwork, ...] = ()

    @classmethod
    def parse(cls, text: str | None) -> "AllowList":
        names, networks = set(), []
        for entry in (item.strip().lower() for item in (text or "").split(",")):
            if not entry:
                continue
            try:
                networks.append(ipaddress.ip_network(entry.strip("[]"), strict=False))
            except ValueError:
                names.add(entry.rstrip("."))
        return cls(frozenset(names), tuple(networks))

    def allows(self, host: str, address: IPAddress) -> bool:
        return host in self.names or any(address in net for net in self.networks)


def parse_url(url: str) -> Target:
    """The URL's parts; `InvalidCallback` unless it is an absolute http(s) URL."""
    if len(url) > MAX_URL_LENGTH or any(c.isspace() or ord(c) < 32 for c in url):
        raise InvalidCallback("the callback URL is too long or has spaces or control characters")
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError as exc:
        raise InvalidCallback(f"the callback URL cannot be parsed: {exc}") from None
    if parts.scheme not in _DEFAULT_PORTS:
        raise InvalidCallback("the callback URL must be http:// or https://")
    if parts.username is not None or parts.password is not None:
        raise InvalidCallback("the callback URL must not carry credentials")
    host = _host(parts)
    path = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
    return Target(parts.scheme, host, port or _DEFAULT_PORTS[parts.scheme], path)


def _host(parts: SplitResult) -> str:
    host = (parts.hostname or "").rstrip(".")
    if not host:
        raise InvalidCallback("the callback URL has no host")
    try:
        return str(ipaddress.ip_address(host))
    except ValueError:
        pass
    if not all(_LABEL.match(label) for label in host.split(".")) or host.isdigit():
        raise InvalidCallback(f"the callback URL's host {host!r} is no valid host name")
    return host


def forbidden_reason(address: IPAddress) -> str | None:
    """Why a callback may not reach `address` (None: a public address)."""
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        address = address.ipv4_mapped
    for reason, hit in (
        ("unspecified", address.is_unspecified),
        ("loopback", address.is_loopback),
        ("link-local", address.is_link_local),
        ("multicast", address.is_multicast),
        ("private", address.is_private),
        ("reserved", address.is_reserved),
        ("not global", not address.is_global),
    ):
        if hit:
            return reason
    return None


def resolve(target: Target) -> list[IPAddress]:
    """Every address the host has now; `Unresolvable` when it has none."""
    try:
        return [ipaddress.ip_address(target.host)]
    except ValueError:
        pass
    try:
        infos = socket.getaddrinfo(target.host, target.port, type=socket.SOCK_STREAM)
    except (OSError, UnicodeError) as exc:
        raise Unresolvable(f"cannot resolve {target.host!r}: {exc}") from None
    found = dict.fromkeys(ipaddress.ip_address(str(info[4][0]).partition("%")[0]) for info in infos)
    if not found:
        raise Unresolvable(f"{target.host!r} has no address")
    return list(found)


def checked_addresses(
    target: Target, addresses: list[IPAddress], allow: AllowList
) -> list[IPAddress]:
    """The addresses to connect to, in order, once every one is allowed (a name
    that resolves to one internal address among public ones is refused)."""
    for address in addresses:
        reason = forbidden_reason(address)
        if reason and not allow.allows(target.host, address):
            raise InvalidCallback(
                f"the callback host {target.host!r} resolves to {address}, a {reason} "
                "address (ARRAYQ_WEBHOOK_ALLOW_HOSTS may allow it)"
            )
    return addresses


def check_callback_url(url: str, allow: AllowList) -> Target:
    """The submission's check: a valid URL whose host resolves to allowed addresses."""
    target = parse_url(url)
    try:
        checked_addresses(target, resolve(target), allow)
    except Unresolvable as exc:
        raise InvalidCallback(f"the callback URL's host: {exc}") from None
    return target
