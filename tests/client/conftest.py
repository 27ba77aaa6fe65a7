"""Fixtures for the client tests: a fake clock, the fake API server, clients bound to it."""

from __future__ import annotations

import random
from collections.abc import AsyncIterator

import pytest

from kubevisor.client import Client, ClientConfig, ClientOptions
from tests.client.fakeapi import FakeAPI


class FakeClock:
    """A monotonic clock under the test's control: ``sleep`` returns at once, advancing time and
    recording the delay, so tests assert exact waits without waiting."""

    def __init__(self, start: float = 1000.0) -> None:
        self.time = start
        self.sleeps: list[float] = []

    def now(self) -> float:
        return self.time

    async def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.time += max(0.0, seconds)

    def advance(self, seconds: float) -> None:
        self.time += seconds


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
async def api() -> AsyncIterator[FakeAPI]:
    async with FakeAPI() as server:
        yield server


@pytest.fixture
async def client(api: FakeAPI, clock: FakeClock) -> AsyncIterator[Client]:
    config = ClientConfig(server=api.url, namespace="default")
    async with Client(config, ClientOptions(), clock=clock, rng=random.Random(7)) as c:
        yield c
