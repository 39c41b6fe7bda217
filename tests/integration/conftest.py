"""Fixtures of the integration tests: generated data sets, made once per session and shared by
every test that reads the same data (see samples.py), and the local Druid cluster (druid.py).

The servers themselves (moto, kinesis-local) are in tests/conftest.py.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from dredge.testing import MotoServer, service_unavailable
from tests.integration.druid import DruidCluster, load_smoke
from tests.integration.samples import Samples
from tests.integration.streams import Sample


@pytest.fixture(scope="session")
def sample(samples: Samples) -> Sample:
    """v2 lines (about 3,200) and their ownership and CIDR files: what the `dredge run` tests
    put into Kinesis. Each test gets its own list of the lines."""
    return samples.stream(flows=6_000, seed=9)


@pytest.fixture(scope="session")
def replay_logs(samples: Samples) -> Path:
    """Four hours, 60,000 flows in every file kind, malformed lines and a truncated gzip
    included: the end-to-end replay."""
    return samples.logs(flows=60_000, seed=11, hours=4)


@pytest.fixture(scope="session")
def hour_logs(samples: Samples) -> Path:
    """One hour, 4,000 flows: small replays (S3, Druid over TLS)."""
    return samples.logs(flows=4_000, seed=11, hours=1)


@pytest.fixture(scope="session")
def druid_logs(samples: Samples) -> Path:
    """Two hours, 20,000 flows (each hour more than inline staging takes): Druid backfills."""
    return samples.logs(flows=20_000, seed=5, hours=2)


@pytest.fixture(params=["sql", "glue"])
def iceberg_catalog(request: pytest.FixtureRequest, moto: MotoServer, tmp_path: Path
                    ) -> Iterator[dict[str, str]]:
    """``[sink.iceberg] catalog`` properties: a warehouse in a fresh moto S3 bucket and a SQL
    catalog (SQLite in tmp_path) or moto's Glue (pyiceberg's DynamoDB catalog cannot commit)."""
    import uuid

    import boto3

    bucket = f"wh-{uuid.uuid4().hex[:12]}"
    boto3.client("s3", endpoint_url=moto.endpoint, region_name="us-east-1",
                 aws_access_key_id="testing", aws_secret_access_key="testing").create_bucket(Bucket=bucket)
    s3 = {"s3.endpoint": moto.endpoint, "s3.region": "us-east-1", "s3.access-key-id": "testing",
          "s3.secret-access-key": "testing", "warehouse": f"s3://{bucket}/wh"}
    if request.param == "sql":
        yield {"type": "sql", "uri": f"sqlite:///{tmp_path / 'iceberg-catalog.db'}", **s3}
        return
    glue = {"type": "glue", "glue.endpoint": moto.endpoint, "glue.region": "us-east-1",
            "glue.access-key-id": "testing", "glue.secret-access-key": "testing", **s3}
    yield glue
    # moto's Glue is one per session: the next test must not find this test's tables
    from pyiceberg.catalog import load_catalog

    catalog = load_catalog("cleanup", **glue)
    for ns in catalog.list_namespaces():
        for ident in catalog.list_tables(ns):
            catalog.drop_table(ident)
        catalog.drop_namespace(ns)


@pytest.fixture(scope="session")
def druid() -> Iterator[DruidCluster]:
    """The local Druid (``make druid-up``): every service and its kinesis-local answer, or the
    test is skipped (failed in CI). The datasources the tests made are dropped at the end."""
    smoke = load_smoke()
    endpoints = smoke.Endpoints.from_env()
    why = smoke.unreachable(endpoints)
    if why:
        service_unavailable(why)
    cluster = DruidCluster(endpoints)
    try:
        yield cluster
    finally:
        cluster.drop_created()
