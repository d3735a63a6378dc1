"""Where a webhook may go, judged without the network (core.webhook_target.check): ranges
from the IANA special-purpose address registries (RFC 6890, RFC 4193 unique-local, RFC 6598
shared address space, RFC 3927 / RFC 4291 link-local), and the address connected to is the
one checked."""

from __future__ import annotations

import ipaddress

import pytest

from core.webhook_target import Target, WebhookTargetError, check, resolve

PUBLIC_V4 = ipaddress.ip_address("93.184.216.34")
PUBLIC_V6 = ipaddress.ip_address("2606:2800:220:1:248:1893:25c8:1946")
INWARD = [
    "127.0.0.1",  # loopback
    "10.0.0.1",  # RFC 1918
    "172.31.255.255",
    "192.168.0.1",
    "169.254.169.254",  # link-local: cloud metadata services
    "100.64.0.1",  # RFC 6598 shared (carrier-grade NAT)
    "0.0.0.0",  # noqa: S104 - an address under test, not one bound
    "224.0.0.1",  # multicast
    "::1",
    "fe80::1",  # link-local
    "fd00::1",  # unique-local
    "::ffff:10.0.0.1",  # an IPv4-mapped private address
]


@pytest.mark.parametrize("address", INWARD)
def test_inward_addresses_are_refused(address: str) -> None:
    with pytest.raises(WebhookTargetError, match="not a public address"):
        check("https://hooks.example.org/x", [ipaddress.ip_address(address)], allow_private=False)


def test_one_inward_address_among_public_ones_is_enough_to_refuse() -> None:
    """A name answering with several addresses: any of them could be the one connected to."""
    with pytest.raises(WebhookTargetError, match=r"10\.0\.0\.1"):
        check(
            "https://hooks.example.org/x",
            [PUBLIC_V4, ipaddress.ip_address("10.0.0.1")],
            allow_private=False,
        )


def test_a_public_https_target_connects_to_the_address_checked_under_its_name() -> None:
    target = check("https://hooks.example.org/a/b?c=1", [PUBLIC_V4, PUBLIC_V6], allow_private=False)
    assert isinstance(target, Target)
    assert target.connect_url == "https://93.184.216.34:443/a/b?c=1"
    assert (target.host, target.host_header) == ("hooks.example.org", "hooks.example.org")
    v6 = check("https://hooks.example.org:8443/", [PUBLIC_V6], allow_private=False)
    assert v6.connect_url == f"https://[{PUBLIC_V6}]:8443/"
    assert v6.host_header == "hooks.example.org:8443"


@pytest.mark.parametrize(
    ("url", "reason"),
    [
        ("http://hooks.example.org/x", "https://"),
        ("ftp://hooks.example.org/x", "https://"),
        ("https:///x", "needs a host"),
        ("https://u:p@hooks.example.org/x", "credentials"),
        ("https://hooks.example.org:99999/x", "port"),
    ],
)
def test_malformed_or_plain_urls_are_refused(url: str, reason: str) -> None:
    with pytest.raises(WebhookTargetError, match=reason):
        check(url, [PUBLIC_V4], allow_private=False)


def test_on_premises_allows_private_targets_and_plain_http_only_to_them() -> None:
    private = [ipaddress.ip_address("10.0.0.7")]
    assert check("http://hooks.lan/x", private, allow_private=True).port == 80
    assert check("https://hooks.lan/x", private, allow_private=True).port == 443
    with pytest.raises(WebhookTargetError, match="public address must use https"):
        check("http://hooks.example.org/x", [PUBLIC_V4], allow_private=True)


def test_a_name_is_resolved_before_it_is_judged() -> None:
    # `localhost` resolves through /etc/hosts on every machine: no network needed.
    with pytest.raises(WebhookTargetError, match="not a public address"):
        resolve("https://localhost/x", allow_private=False)
    assert resolve("https://localhost:9/x", allow_private=True).addresses[0].is_loopback
    with pytest.raises(WebhookTargetError, match="does not resolve"):
        resolve("https://no-such-host.invalid/x", allow_private=False)  # RFC 2606
