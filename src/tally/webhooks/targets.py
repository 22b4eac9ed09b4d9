"""Which URLs tally may send webhooks to (server-side request forgery policy).

An endpoint URL must be https:// to a public address. Plain http:// is
allowed only to loopback or private addresses, and only when the operator
opts in with TALLY_WEBHOOK_ALLOW_PRIVATE=1 (a receiver on the same network,
tests). Without the opt-in, https:// to a private, loopback, link-local or
otherwise non-global address is refused as well, whether the host is such an
address literally or a name resolving to one: a tenant's admin must not reach
the operator's own network through tally. The check runs at creation and
again before every attempt, and the attempt connects to the very address
that was checked (the name is not resolved twice), so a name re-pointed to
a private address after creation (DNS rebinding) gets nowhere.
"""

import ipaddress
import socket
from dataclasses import dataclass
from urllib.parse import SplitResult, urlsplit

IpAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
MAX_URL = 2048


class TargetRefused(ValueError):
    """A URL tally will not send to; the message says why, for people."""


@dataclass(frozen=True, slots=True)
class Target:
    """Where one attempt connects: the checked address, and the name for Host and TLS."""

    url: str
    address: IpAddress
    host: str
    host_header: str


def _parse(url: str) -> SplitResult:
    if len(url) > MAX_URL:
        raise TargetRefused(f"at most {MAX_URL} characters")
    try:
        parts = urlsplit(url)
        parts.port  # noqa: B018 - raises on a malformed port
    except ValueError as exc:
        raise TargetRefused("not a valid URL") from exc
    if parts.scheme not in ("https", "http") or not parts.hostname:
        raise TargetRefused("must be an https:// URL with a host")
    if parts.username is not None or parts.password is not None:
        raise TargetRefused("must not carry a user name or password")
    if parts.fragment:
        raise TargetRefused("must not have a #fragment")
    return parts


def _literal(host: str) -> IpAddress | None:
    try:
        return ipaddress.ip_address(host)
    except ValueError:
        return None


def is_private(address: IpAddress) -> bool:
    """Anything but a global unicast address: loopback, private, link-local, CGNAT, ..."""
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        address = address.ipv4_mapped
    return not address.is_global or address.is_multicast


def resolve(host: str, port: int) -> list[IpAddress]:
    """Every address a host name stands for (a literal stands for itself)."""
    literal = _literal(host)
    if literal is not None:
        return [literal]
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except UnicodeError as exc:  # not a host name at all: a label over 63 characters, ...
        raise TargetRefused("the host is not a valid host name") from exc
    return [ipaddress.ip_address(info[4][0]) for info in infos]


def _allowed(scheme: str, addresses: list[IpAddress], allow_private: bool) -> None:
    private = [address for address in addresses if is_private(address)]
    if scheme == "http":
        if not allow_private:
            raise TargetRefused(
                "must be https:// (http:// only to private addresses, when allowed)"
            )
        if len(private) != len(addresses):
            raise TargetRefused("http:// is allowed only to loopback or private addresses")
    elif private and not allow_private:
        raise TargetRefused("resolves to a private, loopback or link-local address")


def check_url(url: str, allow_private: bool) -> None:
    """At creation: refuse what can never be sent; a name that does not resolve yet passes."""
    parts = _parse(url)
    host = parts.hostname or ""
    try:
        addresses = resolve(host, parts.port or 443)
    except OSError:
        if parts.scheme == "http":
            raise TargetRefused("http:// needs a host that resolves to a private address") from None
        return
    _allowed(parts.scheme, addresses, allow_private)


def target_of(url: str, allow_private: bool) -> Target:
    """Before an attempt: resolve once, check every address, connect to the first."""
    parts = _parse(url)
    host = parts.hostname or ""
    port = parts.port or (443 if parts.scheme == "https" else 80)
    try:
        addresses = resolve(host, port)
    except OSError as exc:
        raise TargetRefused("host does not resolve") from exc
    _allowed(parts.scheme, addresses, allow_private)
    address = addresses[0]
    shown = f"[{address}]" if address.version == 6 else str(address)
    netloc = f"{shown}:{parts.port}" if parts.port else shown
    pinned = parts._replace(netloc=netloc).geturl()
    return Target(url=pinned, address=address, host=host, host_header=parts.netloc)
