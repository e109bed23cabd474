"""Where errorsink may send a request of its own (alert webhooks, Slack): public addresses only.

A rule's URL is checked when it is saved (``url_problem``) and again when a delivery connects:
the transport resolves the name, checks every address it got, and connects to the address it
checked, so a DNS answer that changes between the two (rebinding) cannot reach an internal
address. Refused: loopback, private, link-local, unique-local, shared (carrier-grade NAT),
multicast, reserved and unspecified addresses, IPv4 written in legacy forms (``2130706433``,
``127.1``) or mapped into IPv6, names that only mean something inside (``localhost``,
``*.local``, ``*.internal``), and URLs carrying a user name or password. An operator who runs
an internal receiver lists it in ERRORSINK_WEBHOOK_ALLOW (docs/alerts.md).
"""

from __future__ import annotations

import ipaddress
import socket
from functools import cache
from urllib.parse import urlsplit

import httpcore
import httpx
from django.conf import settings

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
INTERNAL_SUFFIXES = (".localhost", ".local", ".internal", ".localdomain", ".home.arpa")


class AddressRefused(Exception):
    """A request errorsink will not make; the message says why, for the rule's page."""


def url_problem(url: str) -> str | None:
    """Why errorsink will not send to ``url``, or None when it may (names are resolved only
    when a delivery connects)."""
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https"):
        return "must be an http or https URL"
    if parts.username is not None or parts.password is not None:
        return "must not carry a user name or password (put a token in the path or query)"
    host = (parts.hostname or "").rstrip(".").lower()
    if not host:
        return "has no host"
    if _host_allowed(host):
        return None
    address = ip_literal(host)
    if address is not None:
        problem = address_problem(address)
        return None if problem is None else f"goes to {host}, {problem}"
    if host == "localhost" or host.endswith(INTERNAL_SUFFIXES):
        return f"goes to {host}, a name for an internal host"
    return None


def ip_literal(host: str) -> IPAddress | None:
    """The address a host written as an IP stands for, in any form a resolver accepts
    (``127.1``, ``0x7f000001`` and ``2130706433`` are all 127.0.0.1); None for a name."""
    try:
        return ipaddress.ip_address(host.strip("[]"))
    except ValueError:
        pass
    try:
        return ipaddress.IPv4Address(socket.inet_aton(host))
    except OSError:
        return None


def address_problem(address: IPAddress) -> str | None:
    """Why an address is not one to send to, or None for a public one (or an allowed one)."""
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        address = address.ipv4_mapped
    if any(address in network for network in _allowed()[0]):
        return None
    for test, what in _KINDS:
        if test(address):
            return f"{what} address"
    return None if address.is_global else "not a public address"


_KINDS = (
    (lambda a: a.is_unspecified, "an unspecified"),
    (lambda a: a.is_loopback, "a loopback"),
    (lambda a: a.is_link_local, "a link-local"),
    (lambda a: a.is_multicast, "a multicast"),
    (lambda a: a.is_private, "a private"),
    (lambda a: a.is_reserved, "a reserved"),
)


def connect_address(host: str, port: int) -> str:
    """The address to connect to for ``host``: resolved, every answer checked (one internal
    answer refuses the name), the first returned. Raises AddressRefused."""
    host = host.rstrip(".").lower()
    try:
        answers = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except UnicodeError as exc:
        raise AddressRefused(f"{host} is not a usable host name: {exc}") from None
    except socket.gaierror as exc:  # may pass: a connection error, retried like any other
        raise httpcore.ConnectError(f"{host} does not resolve: {exc.strerror}") from None
    addresses = [ipaddress.ip_address(answer[4][0].split("%")[0]) for answer in answers]
    if not _host_allowed(host):
        for address in addresses:
            problem = address_problem(address)
            if problem is not None:
                raise AddressRefused(f"{host} resolves to {address}, {problem}")
    return str(addresses[0])


class _CheckedBackend(httpcore.SyncBackend):
    """httpcore's socket backend, connecting only to addresses connect_address allows. TLS
    still checks the certificate against the URL's host name (httpcore passes it apart)."""

    def connect_tcp(self, host: str, port: int, *args, **kwargs) -> httpcore.NetworkStream:
        return super().connect_tcp(connect_address(host, port), port, *args, **kwargs)


class CheckedTransport(httpx.HTTPTransport):
    """An httpx transport whose connections go through _CheckedBackend."""

    def __init__(self, **kwargs) -> None:
        super().__init__(**kwargs)
        self._pool._network_backend = _CheckedBackend()  # httpcore 1.x: no public hook


def _host_allowed(host: str) -> bool:
    return host in _allowed()[1]


def _allowed() -> tuple[tuple[ipaddress.IPv4Network | ipaddress.IPv6Network, ...], frozenset]:
    return _parse_allowed(settings.ERRORSINK_WEBHOOK_ALLOW)


@cache
def _parse_allowed(value: str) -> tuple[tuple, frozenset]:
    """ERRORSINK_WEBHOOK_ALLOW: comma-separated networks (CIDR or one address) and host names."""
    networks, names = [], set()
    for entry in (part.strip().lower() for part in value.split(",")):
        if not entry:
            continue
        try:
            networks.append(ipaddress.ip_network(entry.strip("[]"), strict=False))
        except ValueError:
            names.add(entry.rstrip("."))
    return tuple(networks), frozenset(names)
