"""Providers of the live index: each one turns a source of ownership into assignment events
(or CIDR maps) for :mod:`dredge.index.live`, behind one interface (:mod:`.base`).

- :mod:`.ec2`: EC2 inventory, polled per account and region, diffed into history;
- :mod:`.events`: assignment events from a JSON-lines file or a Kinesis stream;
- :mod:`.cidr`: CIDR maps (CSV, AWS ip-ranges.json) reloaded when they change;
- :mod:`.ownership`: ownership history files, read once at start.

Their settings (and the ``[index]`` table composing them) are in :mod:`.config`, which is
light: ``dredge.config`` imports it without loading the providers.
"""
