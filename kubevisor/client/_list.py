"""Lists: an async iterator over items that pages with ``limit``/``continue``, and the collected
form with the list's resourceVersion."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from typing import Generic, TypeVar

from kubevisor.api import Expired

__all__ = ["ListPager", "ObjectList"]

R = TypeVar("R")

PageFetcher = Callable[[str | None, bool], Awaitable[tuple[list[R], str, str]]]
"""``fetch(continue_token, paged)`` → ``(items, list resourceVersion, next continue token)``."""


@dataclass(frozen=True)
class ObjectList(Generic[R]):
    """Every item of a list and the resourceVersion the list was served at: start a watch from it
    to see every later change exactly once."""

    items: list[R]
    resource_version: str

    def __len__(self) -> int:
        return len(self.items)


class ListPager(Generic[R]):
    """The items of a list, fetched a page at a time (``limit`` items, following ``continue``).

    Iterating again lists again.  All pages belong to one consistent snapshot (the server serves
    continuations at the first page's resourceVersion); when that snapshot has been compacted away
    mid-listing, the server answers 410 and iteration raises :class:`~kubevisor.api.Expired`
    (:meth:`collect` instead falls back to one unpaged list, as client-go's pager does).
    """

    def __init__(self, fetch: PageFetcher[R]) -> None:
        self._fetch = fetch
        self.resource_version: str | None = None
        """The list's resourceVersion, known once the first page has arrived."""

    async def pages(self) -> AsyncIterator[list[R]]:
        """Each page's items in turn."""
        token: str | None = None
        first = True
        while True:
            items, version, token = await self._fetch(token, True)
            if first:
                self.resource_version, first = version, False
            yield items
            if not token:
                return

    async def _items(self) -> AsyncIterator[R]:
        async for page in self.pages():
            for item in page:
                yield item

    def __aiter__(self) -> AsyncIterator[R]:
        return self._items()

    async def collect(self) -> ObjectList[R]:
        """Every item, with the list's resourceVersion."""
        collected: list[R] = []
        token: str | None = None
        version = ""
        while True:
            try:
                items, page_version, token = await self._fetch(token, True)
            except Expired:
                if token is None:
                    raise
                # The continue token outlived the snapshot: one full list is consistent again.
                items, version, _ = await self._fetch(None, False)
                self.resource_version = version
                return ObjectList(items, version)
            if not version:
                version = page_version
            collected.extend(items)
            if not token:
                self.resource_version = version
                return ObjectList(collected, version)
