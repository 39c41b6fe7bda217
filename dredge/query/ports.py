"""Service ports and their names, as the IANA service-name registry spells them.

Query output shows a flow's service ``port`` (:mod:`dredge.flowlog.ports`) as its number
with the registry's name where this table has one (``443 (https)``), ``0`` as ``ephemeral``
(both sides above ``ephemeral_from``); ``--where port=...`` takes a number, a name (any case)
or ``ephemeral``. The store and JSON keep the number. Source: IANA "Service Name and Transport
Protocol Port Number Registry" (https://www.iana.org/assignments/service-names-port-numbers),
the ports engineers meet most, under the registry's own names; a port whose registered name
is not what runs there in practice (9092, 9200, 6443, ...) is shown as its number only.
"""

from __future__ import annotations

from dredge.flowlog.ports import EPHEMERAL

EPHEMERAL_NAME = "ephemeral"

NAMES: dict[int, str] = {
    20: "ftp-data", 21: "ftp", 22: "ssh", 23: "telnet", 25: "smtp", 53: "domain",
    67: "bootps", 68: "bootpc", 69: "tftp", 80: "http", 88: "kerberos", 110: "pop3",
    111: "sunrpc", 123: "ntp", 135: "epmap", 137: "netbios-ns", 138: "netbios-dgm",
    139: "netbios-ssn", 143: "imap", 161: "snmp", 162: "snmptrap", 179: "bgp", 389: "ldap",
    443: "https", 445: "microsoft-ds", 465: "submissions", 500: "isakmp", 514: "syslog",
    587: "submission", 636: "ldaps", 853: "domain-s", 873: "rsync", 993: "imaps", 995: "pop3s",
    1194: "openvpn", 1433: "ms-sql-s", 1812: "radius", 1813: "radius-acct", 2049: "nfs",
    2379: "etcd-client", 2380: "etcd-server", 3260: "iscsi-target", 3306: "mysql",
    3389: "ms-wbt-server", 4500: "ipsec-nat-t", 4789: "vxlan", 5060: "sip", 5061: "sips",
    5353: "mdns", 5432: "postgresql", 5671: "amqps", 5672: "amqp", 6081: "geneve",
    6379: "redis", 8080: "http-alt", 9418: "git", 11211: "memcache", 27017: "mongodb",
}
# other spellings engineers type
ALIASES = {"dns": 53, "postgres": 5432, "rdp": 3389, "mssql": 1433, "smtps": 465, "ldap-s": 636,
           "dot": 853, "memcached": 11211, EPHEMERAL_NAME: EPHEMERAL}
NUMBERS: dict[str, int] = {**{k: n for n, k in NAMES.items()}, **ALIASES}


def label(port: int | None) -> str | None:
    """``443 (https)``; ``ephemeral`` for 0; the number alone when the table names none."""
    if port is None:
        return None
    p = int(port)
    if p == EPHEMERAL:
        return EPHEMERAL_NAME
    known = NAMES.get(p)
    return f"{p} ({known})" if known else str(p)


def number(text: str) -> int | None:
    """A port number (0-65535), a service name (any case) or ``ephemeral`` -> the number;
    None when it is none of these."""
    t = text.strip().lower()
    if t.isascii() and t.isdigit():
        n = int(t)
        return n if n <= 65_535 else None
    return NUMBERS.get(t)
