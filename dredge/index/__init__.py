"""The time-versioned IP -> owner index; lowest module first (each imports only those above it):

- ``owners``: owner tuples, their Arrow encoding, the owner catalog;
- ``kernels/``: compiled (C) hash-table layout, lookups, interval flattening;
- ``tables``: address/network hash tables of time segments; ``history``: assignment events
  per source (merge, derive intervals, compact); ``prefixes``: delegated prefixes;
- ``snapshot``: the immutable snapshot and its vectorized lookup; ``build``: snapshots from
  interval and CIDR tables; ``loaders``: those tables from files; ``state``: the saved state;
- ``config`` (light): the live manager's settings; ``supervisor``: supervised tasks;
  ``intake``: what providers hand in (sinks, pending work, freshness) and the ``Provider``
  protocol; ``live``: the manager that rebuilds and swaps snapshots;
- ``providers/``: EC2 inventory, assignment events, CIDR maps, ownership files, and their
  settings (``providers/config``, light: composed into ``dredge.config``).
"""
