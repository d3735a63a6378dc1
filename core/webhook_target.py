"""Where a webhook may send a patient's alerts: https to an address on the public internet.

The API checks a URL when it is registered and the alerts worker again before every
delivery, after resolving the host name (DNS may have changed since, or answer differently
to the worker), and then connects to the very address it checked, so a name cannot resolve
to a public address for the check and a private one for the connection. Redirects are never
followed (the worker's HTTP client does not), so a receiver cannot bounce the request inward.

An operator running glucobridge on premises may allow private targets (`allow_private`):
then loopback, private, link-local and unique-local addresses are accepted too, and so is
plain http to them (inside the operator's network); a public address still needs https.
"""

from __future__ import annotations

import ipaddress
import socket
from collections.abc import Sequence
from dataclasses import dataclass
from urllib.parse import SplitResult, urlsplit

IpAddress = ipaddress.IPv4Address | ipaddress.IPv6Address

DEFAULT_PORTS = {"https": 443, "http": 80}


class WebhookTargetError(ValueError):
    """A URL a webhook may not use; `reason` says why, for the person registering it."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


@dataclass(frozen=True)
class Target:
    """A checked URL: where to connect, and the name to present (Host, TLS SNI)."""

    url: SplitResult
    host: str
    port: int
    addresses: tuple[IpAddress, ...]  # every address the name resolved to, all allowed

    @property
    def connect_url(self) -> str:
        """The URL with the host replaced by the first checked address."""
        address = self.addresses[0]
        literal = f"[{address}]" if address.version == 6 else str(address)
        path = self.url.path or "/"
        query = f"?{self.url.query}" if self.url.query else ""
        return f"{self.url.scheme}://{literal}:{self.port}{path}{query}"

    @property
    def host_header(self) -> str:
        default = DEFAULT_PORTS[self.url.scheme]
        name = f"[{self.host}]" if ":" in self.host else self.host
        return name if self.port == default else f"{name}:{self.port}"


def is_public(address: IpAddress) -> bool:
    """Outside loopback, private, link-local, unique-local, shared, reserved and multicast
    ranges (an IPv4 address written as IPv6 is judged as the IPv4 address it is)."""
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        address = address.ipv4_mapped
    return address.is_global and not address.is_multicast


def parse(url: str, *, allow_private: bool) -> SplitResult:
    """The URL's parts, refused unless https (http only with private targets allowed)."""
    parts = urlsplit(url)
    allowed = ("https", "http") if allow_private else ("https",)
    if parts.scheme not in allowed:
        raise WebhookTargetError("a webhook URL must start with https://")
    if not parts.hostname:
        raise WebhookTargetError("a webhook URL needs a host")
    if parts.username or parts.password:
        raise WebhookTargetError("a webhook URL may not carry credentials")
    try:
        parts.port  # noqa: B018 - raises on a port out of range
    except ValueError as exc:
        raise WebhookTargetError("the port is not a valid number") from exc
    return parts


def check(url: str, addresses: list[IpAddress], *, allow_private: bool) -> Target:
    """Judge a URL and the addresses its host resolved to (pure: no I/O)."""
    parts = parse(url, allow_private=allow_private)
    if not addresses:
        raise WebhookTargetError(f"{parts.hostname} does not resolve")
    if not allow_private:
        inward = [a for a in addresses if not is_public(a)]
        if inward:
            raise WebhookTargetError(
                f"{parts.hostname} resolves to {inward[0]}, which is not a public address"
            )
    elif parts.scheme == "http" and any(is_public(a) for a in addresses):
        raise WebhookTargetError("a webhook to a public address must use https://")
    assert parts.hostname is not None
    port = parts.port or DEFAULT_PORTS[parts.scheme]
    return Target(parts, parts.hostname, port, tuple(addresses))


def literal_address(host: str) -> IpAddress | None:
    try:
        return ipaddress.ip_address(host)
    except ValueError:
        return None


def addresses_of(infos: Sequence[tuple[object, ...]]) -> list[IpAddress]:
    """The addresses of getaddrinfo's answer, in its order, without repeats."""
    found: list[IpAddress] = []
    for info in infos:
        sockaddr = info[4]
        assert isinstance(sockaddr, tuple)
        address = ipaddress.ip_address(str(sockaddr[0]).split("%", 1)[0])
        if address not in found:
            found.append(address)
    return found


def resolve(url: str, *, allow_private: bool) -> Target:
    """Parse, resolve the host (blocking: DNS) and check every address it resolves to."""
    parts = parse(url, allow_private=allow_private)
    assert parts.hostname is not None
    literal = literal_address(parts.hostname)
    if literal is not None:
        return check(url, [literal], allow_private=allow_private)
    try:
        infos = socket.getaddrinfo(parts.hostname, parts.port or 443, type=socket.SOCK_STREAM)
    except (OSError, UnicodeError) as exc:
        raise WebhookTargetError(f"{parts.hostname} does not resolve") from exc
    return check(url, addresses_of(infos), allow_private=allow_private)
