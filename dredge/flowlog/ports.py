"""A flow's service port: the port of the side that serves, as one bounded dimension.

The rule (README, "The service port"), in columns:

- only TCP (6), UDP (17) and SCTP (132) carry one; any other protocol (ICMP included), a
  record without ``srcport``/``dstport`` (``-`` or not in its format), or a lower port of 0
  gives none (-1 here, NULL in the stores);
- otherwise the lower of ``srcport`` and ``dstport``: servers listen on low, well-known or
  registered ports and clients connect from high, ephemeral ones;
- when even the lower port is ``>= ephemeral_from`` (default 32768, where the Linux ephemeral
  range starts) both sides look ephemeral: the value is 0, "ephemeral".

So the dimension holds at most ``ephemeral_from`` distinct values (32,768 by default; a few
hundred in practice). :func:`lower_port` is the part that needs the record (``FlowColumns.port``
keeps it); :func:`fold_ephemeral` the part that needs the setting, applied by the rollup, whose
setting it is (``Rollup(ephemeral_from=...)``, recorded in the store like the window).
"""

from __future__ import annotations

import numpy as np

PORT_PROTOCOLS = (6, 17, 132)  # tcp, udp, sctp
EPHEMERAL_FROM = 32_768  # the Linux ephemeral range (net.ipv4.ip_local_port_range) starts here
EPHEMERAL = 0  # the service port of a flow between two ephemeral ports
NO_PORT = -1  # FlowColumns.port: no service port (NULL)
# ephemeral_from is at most this: ports 1..65534 and 0 fit 16 bits of the rollup key with a
# null marker; 65535 folds only a flow between two 65535 ports (in effect: never)
MAX_EPHEMERAL_FROM = 65_535


def check_ephemeral_from(value: object) -> str | None:
    """Why ``value`` is not a usable ``ephemeral_from``, or None when it is."""
    if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= MAX_EPHEMERAL_FROM:
        return f"a port number 1-{MAX_EPHEMERAL_FROM} (default {EPHEMERAL_FROM}), not {value!r}"
    return None


# protocol number (as uint16: -1, null, becomes 65535) -> carries a service port: one gather
_CARRIES = np.zeros(1 << 16, np.bool_)
_CARRIES[list(PORT_PROTOCOLS)] = True


def lower_port(src: np.ndarray, src_null: np.ndarray, dst: np.ndarray, dst_null: np.ndarray,
               protocol: np.ndarray) -> np.ndarray:
    """int32: the lower of the two ports for TCP/UDP/SCTP flows whose ports are both known
    and the lower one is not 0; -1 (:data:`NO_PORT`) for every other flow."""
    lo: np.ndarray = np.minimum(src, dst).astype(np.int32)  # ports are 0-65535 (flowlog.bounds)
    carries = _CARRIES[protocol.astype(np.uint16)]
    carries &= lo > 0
    if src_null.any() or dst_null.any():
        carries &= ~(src_null | dst_null)
    lo[~carries] = NO_PORT
    return lo


def fold_ephemeral(port: np.ndarray, ephemeral_from: int = EPHEMERAL_FROM) -> np.ndarray:
    """int32: ``port`` (from :func:`lower_port`) with every port >= ``ephemeral_from`` as 0."""
    out: np.ndarray = np.where(port >= ephemeral_from, np.int32(EPHEMERAL), port.astype(np.int32, copy=False))
    return out


def service_port(src: np.ndarray, src_null: np.ndarray, dst: np.ndarray, dst_null: np.ndarray,
                 protocol: np.ndarray, ephemeral_from: int = EPHEMERAL_FROM) -> np.ndarray:
    """The whole rule: int32 service port, 0 = ephemeral, -1 = none."""
    return fold_ephemeral(lower_port(src, src_null, dst, dst_null, protocol), ephemeral_from)
