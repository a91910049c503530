"""Which network addresses a pull import may reach: public ones, and the operator's allow-list.

The check runs on the addresses a host name resolves to (every one of them: a name that resolves to one
public and one private address is refused), and the fetcher then connects to the address it checked,
never resolving the name again (a second answer could differ: DNS rebinding).
"""

from __future__ import annotations

import asyncio
import ipaddress
import socket

import attrs

from ingestro.config import Network

Address = ipaddress.IPv4Address | ipaddress.IPv6Address

#: Cloud instance metadata services: refused even when an allow-listed network holds them.
METADATA: frozenset[Address] = frozenset(
    ipaddress.ip_address(address) for address in ("169.254.169.254", "fd00:ec2::254", "100.100.100.200")
)


class Refused(Exception):
    """The source may not be fetched (its scheme, or an address it resolves to); the message says why."""


@attrs.frozen
class AllowList:
    """The non-public networks an operator lets imports reach (internal sources); empty: public addresses only."""

    #: ``INGESTRO_IMPORT_ALLOW``, as ``ingestro.config`` checked it.
    networks: tuple[Network, ...] = ()

    def check(self, address: Address) -> None:
        """Refused unless ``address`` is public or in an allowed network; metadata addresses are always refused."""
        if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
            address = address.ipv4_mapped
        if address in METADATA:
            raise Refused(f"{address} is a cloud metadata address")
        if any(address in network for network in self.networks):
            return
        if not address.is_global or address.is_multicast:
            raise Refused(f"{address} is not a public address (loopback, private, link-local or reserved)")


async def resolve(host: str, port: int, allow: AllowList) -> list[Address]:
    """The addresses to connect to for ``host``, in the resolver's order: every one must pass ``allow``."""
    try:
        literal: Address | None = ipaddress.ip_address(host)
    except ValueError:
        literal = None
    if literal is not None:
        allow.check(literal)
        return [literal]
    loop = asyncio.get_running_loop()
    try:
        infos = await loop.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except OSError as error:
        raise Refused(f"cannot resolve {host!r}: {error.strerror or error}") from None
    addresses = list(dict.fromkeys(ipaddress.ip_address(info[4][0]) for info in infos))
    if not addresses:
        raise Refused(f"{host!r} resolves to no address")
    for address in addresses:
        try:
            allow.check(address)
        except Refused as refused:
            raise Refused(f"{host!r} resolves to {refused}") from None
    return addresses
