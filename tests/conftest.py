"""Shared pytest fixtures: real servers on loopback (see dredge.testing), one each per session."""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest

from dredge.testing import KinesisLocal, MotoServer, moto_server, running
from tests.integration.samples import Samples


@pytest.fixture(scope="session")
def moto(tmp_path_factory: pytest.TempPathFactory) -> Iterator[MotoServer]:
    """One moto server (server mode, own process) for the session; AWS env points at it."""
    with moto_server(tmp_path_factory.mktemp("moto")) as server:
        saved = {k: os.environ.get(k) for k in server.env()}
        os.environ.update(server.env())
        try:
            yield server
        finally:
            for k, v in saved.items():
                if v is None:
                    os.environ.pop(k, None)
                else:
                    os.environ[k] = v


@pytest.fixture(scope="session")
def kinesis_local(tmp_path_factory: pytest.TempPathFactory) -> Iterator[KinesisLocal]:
    """One kinesis-local (node, own process) for the session, for what moto does not do as
    Kinesis does (resharding); the AWS environment is left alone (moto's)."""
    with running(KinesisLocal(tmp_path_factory.mktemp("kinesis-local"))) as server:
        yield server


@pytest.fixture(scope="session")
def samples(tmp_path_factory: pytest.TempPathFactory) -> Samples:
    """Every generated data set of the session, by parameters (integration and browser tests
    that read the same data share one generator run)."""
    return Samples(tmp_path_factory)
