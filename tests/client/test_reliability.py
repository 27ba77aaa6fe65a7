"""Rate limiting, retries with backoff and Retry-After, timeouts and dropped connections."""

from __future__ import annotations

import asyncio
import random

import pytest
from aiohttp import web

from kubevisor.api import GroupVersionKind, ServiceUnavailable, TooManyRequests
from kubevisor.client import Client, ClientConfig, ClientOptions, RetryOptions, TokenBucket, TransportError
from tests.client.conftest import FakeClock
from tests.client.fakeapi import CONFIGMAP, FakeAPI, error_response

CM = GroupVersionKind("", "v1", "ConfigMap")


def to(path: str, method: str = "GET"):  # type: ignore[no-untyped-def]
    return lambda request: request.path == path and request.method == method


CM_PATH = "/api/v1/namespaces/default/configmaps/x"


def seed(api: FakeAPI) -> None:
    api.put(CONFIGMAP, {"metadata": {"name": "x", "namespace": "default"}, "data": {"k": "v"}})


# --------------------------------------------------------------------------------------------------
# the token bucket


async def test_token_bucket_allows_a_burst_then_paces_at_qps(clock: FakeClock) -> None:
    bucket = TokenBucket(qps=5, burst=10, clock=clock)
    for _ in range(10):
        await bucket.acquire()
    assert clock.sleeps == []
    await bucket.acquire()
    await bucket.acquire()
    assert clock.sleeps == pytest.approx([0.2, 0.2])


async def test_token_bucket_refills_with_time_up_to_burst(clock: FakeClock) -> None:
    bucket = TokenBucket(qps=2, burst=3, clock=clock)
    for _ in range(3):
        assert bucket.try_acquire()
    assert not bucket.try_acquire()
    clock.advance(1.0)
    assert bucket.tokens == pytest.approx(2.0)
    clock.advance(100)
    assert bucket.tokens == pytest.approx(3.0)


class BlockingClock(FakeClock):
    """Sleeps never end until ``gate`` is set, and time does not move: waiters pile up."""

    def __init__(self) -> None:
        super().__init__()
        self.gate = asyncio.Event()

    async def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        await self.gate.wait()


async def test_token_bucket_reserves_on_arrival_so_waiters_are_paced_in_order() -> None:
    clock = BlockingClock()
    bucket = TokenBucket(qps=10, burst=1, clock=clock)
    await bucket.acquire()
    waiters = [asyncio.create_task(bucket.acquire()) for _ in range(3)]
    await asyncio.sleep(0)
    assert clock.sleeps == pytest.approx([0.1, 0.2, 0.3])
    clock.gate.set()
    await asyncio.gather(*waiters)


async def test_cancelled_waiter_returns_its_token() -> None:
    clock = BlockingClock()
    bucket = TokenBucket(qps=1, burst=1, clock=clock)
    await bucket.acquire()
    waiter = asyncio.create_task(bucket.acquire())
    await asyncio.sleep(0)
    assert bucket.tokens == pytest.approx(-1.0)
    waiter.cancel()
    with pytest.raises(asyncio.CancelledError):
        await waiter
    assert bucket.tokens == pytest.approx(0.0)


def test_token_bucket_rejects_nonsense_settings() -> None:
    with pytest.raises(ValueError, match="qps"):
        TokenBucket(qps=0, burst=1)
    with pytest.raises(ValueError, match="burst"):
        TokenBucket(qps=1, burst=0)


async def test_client_requests_pass_the_rate_limiter_with_client_go_defaults(
    api: FakeAPI, clock: FakeClock
) -> None:
    async with Client(ClientConfig(server=api.url), clock=clock) as client:
        for _ in range(12):
            await client.version()
    assert clock.sleeps == pytest.approx([0.2, 0.2])


async def test_rate_limiting_can_be_disabled(api: FakeAPI, clock: FakeClock) -> None:
    async with Client(ClientConfig(server=api.url), ClientOptions(qps=None), clock=clock) as client:
        for _ in range(30):
            await client.version()
    assert clock.sleeps == []


# --------------------------------------------------------------------------------------------------
# retries


async def test_429_with_retry_after_is_retried_after_exactly_that_delay(
    api: FakeAPI, client: Client, clock: FakeClock
) -> None:
    seed(api)
    api.inject(
        to(CM_PATH),
        lambda: error_response(429, "TooManyRequests", "slow down", headers={"Retry-After": "3"}),
        times=2,
    )
    obj = await client.get(CM, "x")
    assert obj["data"] == {"k": "v"}
    assert clock.sleeps == [3.0, 3.0]
    assert len(api.requests_to(CM_PATH)) == 3


async def test_retry_after_from_the_status_body_is_honoured(
    api: FakeAPI, client: Client, clock: FakeClock
) -> None:
    seed(api)
    api.inject(to(CM_PATH), lambda: error_response(429, "TooManyRequests", "slow down", retryAfterSeconds=7))
    await client.get(CM, "x")
    assert clock.sleeps == [7.0]


async def test_503_on_a_read_is_retried_with_full_jitter_backoff(
    api: FakeAPI, client: Client, clock: FakeClock
) -> None:
    seed(api)
    api.inject(to(CM_PATH), lambda: error_response(503, "ServiceUnavailable", "etcd leader change"), times=3)
    await client.get(CM, "x")
    caps = [0.25, 0.5, 1.0]
    assert len(clock.sleeps) == 3
    assert all(0.0 <= slept <= cap for slept, cap in zip(clock.sleeps, caps, strict=True))


async def test_503_on_a_write_without_retry_after_is_not_retried(
    api: FakeAPI, client: Client, clock: FakeClock
) -> None:
    api.inject(
        to("/api/v1/namespaces/default/configmaps", "POST"),
        lambda: error_response(503, "ServiceUnavailable", "busy"),
    )
    with pytest.raises(ServiceUnavailable):
        await client.create({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "new"}})
    assert clock.sleeps == []
    assert len(api.requests_to("/api/v1/namespaces/default/configmaps", "POST")) == 1


async def test_429_on_a_write_is_retried(api: FakeAPI, client: Client, clock: FakeClock) -> None:
    api.inject(
        to("/api/v1/namespaces/default/configmaps", "POST"),
        lambda: error_response(
            429, "TooManyRequests", "priority level saturated", headers={"Retry-After": "1"}
        ),
    )
    created = await client.create({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "new"}})
    assert created["metadata"]["name"] == "new"
    assert clock.sleeps == [1.0]


async def test_5xx_with_retry_after_is_retried_for_writes_as_client_go_does(
    api: FakeAPI, client: Client, clock: FakeClock
) -> None:
    api.inject(
        to("/api/v1/namespaces/default/configmaps", "POST"),
        lambda: error_response(503, "ServiceUnavailable", "shutting down", headers={"Retry-After": "2"}),
    )
    await client.create({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "new"}})
    assert clock.sleeps == [2.0]


async def test_retries_stop_after_max_retries_and_raise_the_typed_error(
    api: FakeAPI, clock: FakeClock
) -> None:
    seed(api)
    api.inject(
        to(CM_PATH),
        lambda: error_response(429, "TooManyRequests", "no", headers={"Retry-After": "1"}),
        times=10,
    )
    options = ClientOptions(retry=RetryOptions(max_retries=2))
    async with Client(ClientConfig(server=api.url), options, clock=clock) as client:
        with pytest.raises(TooManyRequests) as caught:
            await client.get(CM, "x")
    assert caught.value.retry_after == 1
    assert len(api.requests_to(CM_PATH)) == 3


async def test_a_dropped_connection_on_a_read_is_retried(
    api: FakeAPI, client: Client, clock: FakeClock
) -> None:
    seed(api)
    api.inject(to(CM_PATH), lambda: None, times=2)
    assert (await client.get(CM, "x"))["data"] == {"k": "v"}
    # (aiohttp itself retries an idempotent request once when a reused keep-alive connection
    # turns out closed; the client's own retry covers the rest.)
    assert len(api.requests_to(CM_PATH)) == 3


async def test_a_dropped_connection_on_a_write_is_not_retried(
    api: FakeAPI, client: Client, clock: FakeClock
) -> None:
    api.inject(to("/api/v1/namespaces/default/configmaps", "POST"), lambda: None)
    with pytest.raises(TransportError):
        await client.create({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "new"}})
    assert clock.sleeps == []


async def test_connection_refused_is_retried_then_reported(clock: FakeClock, unused_tcp_port: int) -> None:
    options = ClientOptions(retry=RetryOptions(max_retries=3))
    async with Client(
        ClientConfig(server=f"http://127.0.0.1:{unused_tcp_port}"), options, clock=clock, rng=random.Random(3)
    ) as client:
        with pytest.raises(TransportError, match="ClientConnectorError") as caught:
            await client.version()
    assert len(clock.sleeps) == 3
    assert caught.value.method == "GET"


async def test_read_timeout_on_a_stalled_response_is_a_transport_error(clock: FakeClock) -> None:
    from aiohttp.test_utils import TestServer

    release = asyncio.Event()

    async def stall(request: web.Request) -> web.Response:
        await release.wait()
        return web.json_response({})

    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", stall)
    server = TestServer(app, host="127.0.0.1", port=0)
    await server.start_server()
    try:
        options = ClientOptions(read_timeout=0.05, retry=RetryOptions(max_retries=1))
        async with Client(
            ClientConfig(server=f"http://127.0.0.1:{server.port}"), options, clock=clock
        ) as client:
            with pytest.raises(TransportError, match="Timeout"):
                await client.version()
    finally:
        release.set()
        await server.close()
