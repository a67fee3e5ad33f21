"""The client's address: the one function every part of the shop asks (API throttles, the admin
login lockout, the request log). ``X-Forwarded-For`` is believed only as far as ``TRUSTED_PROXIES``
says: by default no proxy is trusted and the TCP peer (``REMOTE_ADDR``) is the client.

``TRUSTED_PROXIES`` is either a number of proxy hops (each appends the address it saw to
``X-Forwarded-For``; the client is the N-th entry from the right) or a comma-separated list of
proxy addresses and networks (the client is the right-most entry that is not one of them, and
``X-Forwarded-For`` is read only when the TCP peer itself is one of them).
"""
from __future__ import annotations

import ipaddress
from dataclasses import dataclass
from functools import lru_cache

Address = ipaddress.IPv4Address | ipaddress.IPv6Address
Network = ipaddress.IPv4Network | ipaddress.IPv6Network

# An IPv6 client usually holds a whole /64: counting per address would let it pick a fresh one per
# request. Rate limits and lockouts count per /64.
IPV6_KEY_PREFIX = 64


@dataclass(frozen=True)
class TrustedProxies:
    hops: int = 0
    networks: tuple[Network, ...] = ()

    @property
    def any(self) -> bool:
        return bool(self.hops or self.networks)


@lru_cache(maxsize=8)
def trusted_proxies_parse(value) -> TrustedProxies:
    """``""`` (none), ``"2"`` (hops) or ``"10.0.0.0/8, 192.0.2.7"`` (networks); ValueError otherwise."""
    if isinstance(value, int):
        text = str(value)
    elif isinstance(value, (list, tuple)):
        text = ",".join(str(v) for v in value)
    else:
        text = str(value or "")
    text = text.strip()
    if not text:
        return TrustedProxies()
    if text.isascii() and text.isdigit():
        hops = int(text)
        if hops > 32:
            raise ValueError(f"TRUSTED_PROXIES={text}: more proxy hops than any real deployment has")
        return TrustedProxies(hops=hops)
    networks = []
    for part in text.split(","):
        part = part.strip()
        if not part:
            continue
        try:
            networks.append(ipaddress.ip_network(part, strict=False))
        except ValueError:
            raise ValueError(
                f"TRUSTED_PROXIES: {part!r} is neither a number of proxy hops nor an IP address or network"
            ) from None
    return TrustedProxies(networks=tuple(networks))


def _parse_address(text: str) -> Address | None:
    """An address as proxies write it ("192.0.2.1", "192.0.2.1:443", "[2001:db8::1]:443"); None if junk."""
    text = text.strip().strip('"')
    if not text or len(text) > 64:
        return None
    if text.startswith("["):
        text = text[1:].split("]", 1)[0]
    elif text.count(":") == 1:  # IPv4 with a port
        text = text.split(":", 1)[0]
    try:
        address = ipaddress.ip_address(text.split("%", 1)[0])
    except ValueError:
        return None
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        return address.ipv4_mapped
    return address


def _trusted(address: Address, networks) -> bool:
    return any(address.version == n.version and address in n for n in networks)


def client_address(meta: dict, proxies: TrustedProxies) -> Address | None:
    """The client's address from a WSGI environ (or ``request.META``) under a proxy configuration."""
    peer = _parse_address(str(meta.get("REMOTE_ADDR") or ""))
    if not proxies.any or peer is None:
        return peer
    if proxies.networks and not _trusted(peer, proxies.networks):
        return peer  # not from one of our proxies: whatever it says about others is its own claim
    forwarded = [part for part in str(meta.get("HTTP_X_FORWARDED_FOR") or "").split(",")]
    forwarded = [part for part in forwarded if part.strip()]
    if not forwarded:
        return peer
    if proxies.hops:
        # The right-most ``hops`` entries were written by our proxies; a shorter list means the
        # request skipped some of them, and its left-most entry is the best we have.
        entry = forwarded[-min(proxies.hops, len(forwarded))]
        return _parse_address(entry) or peer
    current = peer
    for entry in reversed(forwarded):
        address = _parse_address(entry)
        if address is None:
            return current  # junk appended through a trusted hop: count it as that hop
        if not _trusted(address, proxies.networks):
            return address
        current = address
    return current


def _configured() -> TrustedProxies:
    from django.conf import settings

    return trusted_proxies_parse(getattr(settings, "TRUSTED_PROXIES", ""))


def client_ip(request) -> str:
    """The client's IP address as text ("" when the server gave none, e.g. a unix socket)."""
    address = client_address(request.META, _configured())
    return str(address) if address is not None else ""


def client_key(request) -> str:
    """What rate limits and lockouts count by: the IPv4 address, or the IPv6 /64 of the client."""
    address = client_address(request.META, _configured())
    if address is None:
        return "unknown"
    if address.version == 6:
        return str(ipaddress.ip_network(f"{address}/{IPV6_KEY_PREFIX}", strict=False))
    return str(address)
