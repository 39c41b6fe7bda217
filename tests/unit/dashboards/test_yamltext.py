"""The YAML writer: PyYAML reads back exactly what was written."""

from __future__ import annotations

from typing import Any

import yaml
from hypothesis import given
from hypothesis import strategies as st

from dredge.dashboards.yamltext import dumps

scalars = st.none() | st.booleans() | st.integers(-(2**63), 2**63 - 1) | st.text() | \
    st.floats(allow_nan=False, allow_infinity=False) | st.sampled_from(
        ["no", "yes", "on", "null", "1.0", "0x1f", "~", "- a", "a: b", "#x", "'q'", '"', "\t"])
keys = st.text(min_size=1) | st.sampled_from(["no", "on", "y", "true", "key-1", "_k"])
values = st.recursive(scalars, lambda inner: st.lists(inner, max_size=4)
                      | st.dictionaries(keys, inner, max_size=4), max_leaves=20)


@given(st.dictionaries(keys, values, max_size=6))
def test_round_trip(doc: dict[str, Any]) -> None:
    assert yaml.safe_load(dumps(doc)) == (doc or None)


def test_readable() -> None:
    text = dumps({"a": [{"b": 1, "c": [1, "x"]}, []], "no": {}, "d": None})
    assert text == 'a:\n  - b: 1\n    c:\n      - 1\n      - "x"\n  - []\n"no": {}\nd: null\n'
