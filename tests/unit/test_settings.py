"""dredge.settings (the generic loader and shared checks), the metrics helpers and Tally:
what every component's settings and metrics are built with."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import pytest

from dredge.errors import ConfigError
from dredge.settings import apply_env, build, check_positive, check_url, load, sub_validate
from dredge.telemetry.metrics import REGISTRY, counter
from dredge.telemetry.tally import Tally


@dataclass(frozen=True)
class Inner:
    rate_s: float = 1.0
    names: list[str] = field(default_factory=list)

    def validate(self) -> None:
        check_positive(self, "rate_s")


@dataclass(frozen=True)
class Root:
    inner: Inner = field(default_factory=Inner)
    items: list[Inner] = field(default_factory=list)
    optional: Inner | None = None
    flag: bool = False


def test_build_types_and_refuses_by_dotted_name() -> None:
    root = build(Root, {"inner": {"rate_s": 2}, "items": [{"names": ["a"]}], "flag": True}, "")
    assert root == Root(Inner(2.0), [Inner(names=["a"])], None, True)
    assert isinstance(root.inner.rate_s, float)
    assert build(Root, {"optional": {}}, "").optional == Inner()  # present = on
    for data, key, message in [
            ({"inner": {"rate": 1}}, "inner.rate", "unknown key"),
            ({"items": [{"rate_s": "x"}]}, "items[0].rate_s", "must be a number"),
            ({"flag": 1}, "flag", "must be true or false"),
            ({"items": {}}, "items", "must be a list")]:
        with pytest.raises(ConfigError) as err:
            build(Root, data, "")
        assert (err.value.field, str(err.value)) == (key, f"{key}: {message}")


def test_env_overrides_fold_into_the_data() -> None:
    data: dict[str, object] = {"inner": {"rate_s": 3.0}}
    apply_env(Root, data, {"DREDGE_INNER__NAMES": "a, b", "DREDGE_ITEMS__1__RATE_S": "0.5",
                           "DREDGE_FLAG": "yes", "DREDGE_LOG_JSON": "1", "OTHER": "x"})
    assert build(Root, data, "") == Root(Inner(3.0, ["a", "b"]), [Inner(), Inner(0.5)], None, True)
    with pytest.raises(ConfigError, match=r"inner\.nope: unknown key"):
        apply_env(Root, {}, {"DREDGE_INNER__NOPE": "1"})
    with pytest.raises(ConfigError, match=r"items\[0\]: DREDGE_ITEMS__0: set the item's keys"):
        apply_env(Root, {}, {"DREDGE_ITEMS__0": "1"})


def test_load_reads_toml_then_env(tmp_path: Path) -> None:
    path = tmp_path / "c.toml"
    path.write_text("flag = true\n[inner]\nrate_s = 4\n")
    assert load(Root, path, {"DREDGE_INNER__RATE_S": "5"}) == Root(Inner(5.0), flag=True)
    assert load(Root, None, {}) == Root()
    path.write_text("flag = \n")
    with pytest.raises(ConfigError, match="is not valid TOML"):
        load(Root, path, {})


def test_sub_validate_names_the_full_key() -> None:
    with pytest.raises(ConfigError) as err:
        sub_validate("items[2]", Inner(rate_s=0).validate)
    assert (err.value.field, str(err.value)) == ("items[2].rate_s", "items[2].rate_s: must be > 0")
    sub_validate("inner", Inner().validate)


def test_shared_checks() -> None:
    check_url("endpoint_url", "")
    check_url("endpoint_url", "https://kinesis.eu-west-1.amazonaws.com")
    with pytest.raises(ConfigError, match="endpoint_url: an http:// or https:// URL"):
        check_url("endpoint_url", "kinesis.local:4567")
    with pytest.raises(ConfigError, match=r"druid\.rate_s: must be > 0"):
        check_positive(Inner(rate_s=-1), "rate_s", prefix="druid.")


def test_metric_helper_registers_on_the_process_registry() -> None:
    c = counter("dredge_test_helper_total", "A counter for this test.", ["outcome"])
    c.labels("ok").inc(3)
    assert REGISTRY.get_sample_value("dredge_test_helper_total", {"outcome": "ok"}) == 3
    with pytest.raises(ValueError, match="dredge_<component>_"):
        counter("test_helper_total", "No prefix.")


@dataclass
class Counts(Tally):
    a: int = 0
    b: int = 0


@dataclass(frozen=True)
class Batch:
    a: int
    b: int


def test_tally_adds_field_by_field() -> None:
    total = Counts()
    total.add(Batch(1, 2))
    total.add(Counts(10, 20))
    assert total == Counts(11, 22)
