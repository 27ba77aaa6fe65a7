"""HTTP helpers shared by the built-in controller tests (garbage collector, namespaces)."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any

import aiohttp

DEADLINE = 20.0


class Api:
    """A few verbs over an aiohttp session, answering ``(status, body)``."""

    def __init__(self, session: aiohttp.ClientSession) -> None:
        self.session = session

    async def call(self, method: str, path: str, body: Any = None) -> tuple[int, dict[str, Any]]:
        async with self.session.request(method, path, json=body) as response:
            return response.status, await response.json(content_type=None)

    async def get(self, path: str) -> dict[str, Any] | None:
        status, body = await self.call("GET", path)
        assert status in (200, 404), body
        return body if status == 200 else None

    async def create(self, collection: str, body: dict[str, Any]) -> dict[str, Any]:
        status, created = await self.call("POST", collection, body)
        assert status == 201, created
        return created

    async def delete(self, path: str, policy: str | None = None) -> tuple[int, dict[str, Any]]:
        options = {"propagationPolicy": policy} if policy else None
        return await self.call("DELETE", path, options)

    async def release(self, path: str) -> None:
        """Remove every finalizer from the object at ``path``."""
        obj = await self.get(path)
        assert obj is not None
        obj["metadata"]["finalizers"] = []
        status, body = await self.call("PUT", path, obj)
        assert status == 200, body

    async def gone(self, path: str) -> bool:
        return await self.get(path) is None


async def eventually(check: Callable[[], Awaitable[bool]], deadline: float = DEADLINE) -> None:
    """Wait until ``check()`` holds; fail after ``deadline`` seconds (a bound, not a measurement)."""
    async with asyncio.timeout(deadline):
        while not await check():  # noqa: ASYNC110 - the condition lives behind HTTP: nothing to await
            await asyncio.sleep(0.01)
