"""Correct totals for what is kept: random mixes of good and bad records through ``replay``,
then ``query``: the stored sums equal the sums of the good records, every bad one is counted
and dead-lettered, none twice. And ownership files of any JSON: never a crash, the good
lines answer."""

from __future__ import annotations

import json
import tempfile
from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.hostile.conftest import HEADER, RECORD, accepted, cli, no_traceback

FIELDS = HEADER.split()
GOOD_BYTES = st.integers(min_value=0, max_value=600_000)  # 10 packets: at most 655,350
BAD_BYTES = st.sampled_from(["-1", "x", "1e3", "99999999999999999999", "9223372036854775807",
                             "", "0x10", "\x00"])


def _record(value: str) -> str:
    values = RECORD.split()
    values[FIELDS.index("bytes")] = value
    return " ".join(values)


@settings(max_examples=12, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(records=st.lists(st.one_of(GOOD_BYTES, BAD_BYTES), min_size=1, max_size=30))
def test_replay_totals_equal_the_good_records(records: list[int | str]) -> None:
    good = [r for r in records if isinstance(r, int)]
    with tempfile.TemporaryDirectory() as d:
        p = Path(d) / "x.log"
        p.write_text(HEADER + "\n" + "\n".join(_record(str(r)) for r in records) + "\n")
        db, dl = Path(d) / "d.duckdb", Path(d) / "dl.jsonl"
        r = accepted(cli("replay", p, "--db", db, "--dead-letter", dl, "--json", "--no-progress"))
        s = json.loads(r.out)
        assert (s["flows"], s["malformed"]) == (len(good), len(records) - len(good))
        letters = dl.read_text().splitlines() if dl.exists() else []
        assert len(letters) == len(records) - len(good)
        assert sorted(json.loads(x)["line"] for x in letters) == [
            i + 2 for i, v in enumerate(records) if not isinstance(v, int)]
        q = accepted(cli("query", "top", "--db", db, "--json", "--by", "action"))
        rows = [json.loads(x) for x in q.out.splitlines()]
        assert sum(row["bytes"] for row in rows) == sum(good)
        assert sum(row["flows"] for row in rows) == len(good)


json_scalars = st.one_of(st.none(), st.booleans(), st.integers(min_value=-(2**70), max_value=2**70),
                         st.floats(), st.text(max_size=30))


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(lines=st.lists(st.dictionaries(st.sampled_from(["ip", "start", "end", "app", "az"]),
                                      json_scalars, max_size=5), max_size=5))
def test_ownership_files_of_any_json(lines: list[dict[str, object]]) -> None:
    with tempfile.TemporaryDirectory() as d:
        p = Path(d) / "o.jsonl"
        text = "".join(json.dumps(x) + "\n" for x in lines)
        p.write_text(text + '{"ip": "10.9.9.9", "start": 0, "app": "good"}\n')
        r = no_traceback(cli("index", "lookup", "10.9.9.9", "--at", "100", "--index", p))
        assert r.rc == 0 and json.loads(r.out)["owner"]["app"] == "good"
