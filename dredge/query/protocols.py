"""IP protocol numbers and their names, as the IANA registry spells its keywords (lower case).

Query output shows a flow's ``protocol`` by name (``tcp``, ``udp``, ``icmp``) and by number
when the registry names none; ``--where protocol=...`` takes either, in any case. The store and
JSON keep the number. Source: IANA "Assigned Internet Protocol Numbers"
(https://www.iana.org/assignments/protocol-numbers), keywords lower-cased; the three entries
whose keyword has spaces use /etc/protocols' names (``isis``, ``mobility-header``), and 84,
which IANA gives two keywords (TTP and IPTM), is ``ttp`` (``iptm`` is accepted too).
"""

from __future__ import annotations

_KEYWORDS = (
    "hopopt icmp igmp ggp ipv4 st tcp cbt egp igp bbn-rcc-mon nvp-ii pup argus emcon xnet "
    "chaos udp mux dcn-meas hmp prm xns-idp trunk-1 trunk-2 leaf-1 leaf-2 rdp irtp iso-tp4 "
    "netblt mfe-nsp merit-inp dccp 3pc idpr xtp ddp idpr-cmtp tp++ il ipv6 sdrp ipv6-route "
    "ipv6-frag idrp rsvp gre dsr bna esp ah i-nlsp swipe narp min-ipv4 tlsp skip ipv6-icmp "
    "ipv6-nonxt ipv6-opts - cftp - sat-expak kryptolan rvd ippc - sat-mon visa ipcv cpnx cphb "
    "wsn pvp br-sat-mon sun-nd wb-mon wb-expak iso-ip vmtp secure-vmtp vines ttp nsfnet-igp "
    "dgp tcf eigrp ospfigp sprite-rpc larp mtp ax.25 ipip micp scc-sp etherip encap - gmtp "
    "ifmp pnni pim aris scps qnx a/n ipcomp snp compaq-peer ipx-in-ip vrrp pgm - l2tp ddx "
    "iatp stp srp uti smp sm ptp isis fire crtp crudp sscopmce iplt sps pipe sctp fc "
    "rsvp-e2e-ignore mobility-header udplite mpls-in-ip manet hip shim6 wesp rohc ethernet "
    "aggfrag nsh"
)

# number -> name ("-": IANA assigns the number to a class of protocols, with no keyword)
NAMES: dict[int, str] = {n: k for n, k in enumerate(_KEYWORDS.split()) if k != "-"}
# other spellings engineers type
ALIASES = {"icmpv6": 58, "icmp6": 58, "ospf": 89, "iptm": 84, "ip-in-ip": 94}
NUMBERS: dict[str, int] = {**{k: n for n, k in NAMES.items()}, **ALIASES}


def name(number: int | None) -> str | None:
    """The protocol's name, or its number as text when the registry names none."""
    if number is None:
        return None
    return NAMES.get(int(number), str(int(number)))


def number(text: str) -> int | None:
    """A protocol name (any case) or number as text -> the number; None when it is neither."""
    t = text.strip().lower()
    if t.isdigit():
        return int(t)
    return NUMBERS.get(t)
