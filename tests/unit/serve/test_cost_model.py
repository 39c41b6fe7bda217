"""The cost model of `dredge query cross-az`: cross-AZ and cross-region as before, internet
egress and NAT gateway processing by the owners' type, each price an option; with the new
prices at 0 the answer is the old one exactly."""

from __future__ import annotations

from pathlib import Path

import pytest

from dredge.query.spec import QuerySpec
from dredge.query.store import query_file


def rows(db: Path, **kw: float) -> dict[tuple[str, str, str], tuple[int, float]]:
    spec = QuerySpec(kind="cross-az", limit=100, **kw)  # type: ignore[arg-type]
    t = query_file(str(db), *spec.sql())
    return {(r["src_app"], r["dst_app"], r["crossing"]): (r["bytes"], r["cost_usd"])
            for r in t.to_pylist()}


def test_every_price_where_the_owners_say_so(store: Path) -> None:
    got = rows(store)
    assert got == {
        ("api", "db", "cross-az"): (4_000_000_000, pytest.approx(0.04)),
        ("api", "db", "cross-region"): (1_000_000_000, pytest.approx(0.02)),
        ("api", "internet", "internet"): (2_000_000_000, pytest.approx(0.18)),  # REJECT left out
        ("web", "egress-nat", "nat"): (1_000_000_000, pytest.approx(0.045)),
        ("egress-nat", "web", "nat"): (3_000_000_000, pytest.approx(0.135)),
        ("egress-nat", "internet", "internet"): (1_000_000_000, pytest.approx(0.09)),
        # a host in another AZ than its NAT gateway pays both
        ("batch", "egress-nat", "cross-az"): (2_000_000_000, pytest.approx(0.02 + 0.09)),
    }


def test_prices_are_parameters_and_zero_means_the_old_model(store: Path) -> None:
    db = store
    got = rows(db, internet_price=0.0, nat_price=0.0)
    assert got == {
        ("api", "db", "cross-az"): (4_000_000_000, 0.04),
        ("api", "db", "cross-region"): (1_000_000_000, 0.02),
        ("batch", "egress-nat", "cross-az"): (2_000_000_000, 0.02),
    }
    # the same floats as the pre-extension SQL: SUM(bytes) / 1e9 * price
    both = rows(db)
    assert both[("api", "db", "cross-az")] == got[("api", "db", "cross-az")]
    assert both[("api", "db", "cross-region")] == got[("api", "db", "cross-region")]
    priced = rows(db, internet_price=1.0, nat_price=0.0, az_price=0.5)
    assert priced[("api", "internet", "internet")] == (2_000_000_000, pytest.approx(2.0))
    assert priced[("batch", "egress-nat", "cross-az")][1] == pytest.approx(1.0)
    assert ("web", "egress-nat", "nat") not in priced
