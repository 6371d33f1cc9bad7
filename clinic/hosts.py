"""Host names and addresses as the clinic's settings and the Asterisk configuration accept
them: one grammar, so a value that passes a form can never break a config file."""

from __future__ import annotations

import ipaddress
import re

_HOST_LABEL = re.compile(r"(?!-)[A-Za-z0-9-]{1,63}(?<!-)")


def is_host(value: str) -> bool:
    """A DNS host name (RFC 1123, Latin letters) or an IPv4/IPv6 address. An IPv6 scope id
    («fe80::1%eth0») is refused: it is free text that would reach pjsip.conf verbatim."""
    if not value or "%" in value or not value.isascii() or not value.isprintable():
        return False
    try:
        ipaddress.ip_address(value)
        return True
    except ValueError:
        pass
    name = value[:-1] if value.endswith(".") else value
    if not name or len(name) > 253:
        return False
    labels = name.split(".")
    # An all-digit last label means a mistyped IP address ("10.0.0.300"), not a host name.
    return all(_HOST_LABEL.fullmatch(label) for label in labels) and not labels[-1].isdigit()
