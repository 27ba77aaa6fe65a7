"""A client closing its watch is the normal end of a watch, not a server error."""

from __future__ import annotations

import asyncio
import logging

import aiohttp
import pytest

from kubevisor.server import APIServer


async def test_a_client_hanging_up_on_a_watch_logs_no_error(
    api_server: APIServer, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    path = "/api/v1/namespaces/default/configmaps"
    async with aiohttp.ClientSession(base_url=api_server.url) as http:
        response = await http.get(path, params={"watch": "true"})
        assert response.status == 200
        response.close()  # hang up mid-stream
        # A write after the hang-up is what meets the closed connection on the server side.
        for i in range(3):
            async with http.post(path, json={"metadata": {"name": f"after-hangup-{i}"}}) as created:
                assert created.status == 201
            await asyncio.sleep(0.05)
    errors = [r for r in caplog.records if r.levelno >= logging.ERROR]
    assert errors == [], [r.getMessage() for r in errors]
