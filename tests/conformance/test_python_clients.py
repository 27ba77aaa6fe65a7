"""The official ``kubernetes`` client, ``kubernetes_asyncio`` and ``lightkube``, unmodified, against the
embedded server: CRUD, paging, selectors, a watch resumed from a resourceVersion, and recovery from a
410 Expired by relisting.

The server keeps a short watch history here (like a compacted etcd) so that 410 is easy to provoke.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from kubevisor.server import APIServer, ServerOptions

HISTORY = 20


class ThreadedServer:
    """An in-process APIServer on its own event loop in a background thread, for synchronous clients."""

    def __init__(self, options: ServerOptions) -> None:
        self.options = options
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, name="apiserver", daemon=True)
        self.server: APIServer | None = None

    def __enter__(self) -> APIServer:
        self.thread.start()
        self.server = APIServer(self.options)
        asyncio.run_coroutine_threadsafe(self.server.start(), self.loop).result(timeout=20)
        return self.server

    def __exit__(self, *exc: object) -> None:
        assert self.server is not None
        asyncio.run_coroutine_threadsafe(self.server.stop(), self.loop).result(timeout=20)
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(timeout=10)
        self.loop.close()


@pytest.fixture(scope="module")
def server() -> Iterator[APIServer]:
    with ThreadedServer(ServerOptions(history_size=HISTORY)) as running:
        yield running


@pytest.fixture(scope="module")
def kubeconfig(server: APIServer, tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("kc") / "kubeconfig"
    path.write_text(yaml.safe_dump(server.kubeconfig))
    return path


_counter = iter(range(1_000_000))


def unique(prefix: str) -> str:
    return f"{prefix}-{next(_counter)}"


def churn(create: Any, namespace: str, count: int) -> None:
    """Write more events than the server's history keeps, so older versions expire."""
    for _ in range(count):
        create(namespace, unique("churn"))


# --- kubernetes (official, synchronous) -----------------------------------------------------------


@pytest.fixture(scope="module")
def core(kubeconfig: Path) -> Any:
    import kubernetes

    api_client = kubernetes.config.new_client_from_config(config_file=str(kubeconfig))
    yield kubernetes.client.CoreV1Api(api_client)
    api_client.close()


def k8s_create_cm(core: Any, namespace: str, name: str, labels: dict[str, str] | None = None) -> Any:
    import kubernetes

    body = kubernetes.client.V1ConfigMap(
        metadata=kubernetes.client.V1ObjectMeta(name=name, labels=labels or {}), data={"k": "v"}
    )
    return core.create_namespaced_config_map(namespace, body)


@pytest.fixture
def k8s_namespace(core: Any) -> str:
    import kubernetes

    name = unique("k8s")
    core.create_namespace(kubernetes.client.V1Namespace(metadata=kubernetes.client.V1ObjectMeta(name=name)))
    return name


def test_kubernetes_client_crud(core: Any, k8s_namespace: str) -> None:
    from kubernetes.client.rest import ApiException

    created = k8s_create_cm(core, k8s_namespace, "crud", {"app": "x"})
    assert created.metadata.uid and created.metadata.resource_version
    got = core.read_namespaced_config_map("crud", k8s_namespace)
    assert got.data == {"k": "v"}
    got.data["k"] = "w"
    replaced = core.replace_namespaced_config_map("crud", k8s_namespace, got)
    assert replaced.data == {"k": "w"}
    patched = core.patch_namespaced_config_map("crud", k8s_namespace, {"data": {"extra": "1"}})
    assert patched.data == {"k": "w", "extra": "1"}
    with pytest.raises(ApiException) as stale:
        core.replace_namespaced_config_map("crud", k8s_namespace, got)  # got's RV is now stale
    assert stale.value.status == 409
    core.delete_namespaced_config_map("crud", k8s_namespace)
    with pytest.raises(ApiException) as missing:
        core.read_namespaced_config_map("crud", k8s_namespace)
    assert missing.value.status == 404


def test_kubernetes_client_pages_and_selects(core: Any, k8s_namespace: str) -> None:
    for i in range(7):
        k8s_create_cm(core, k8s_namespace, f"page-{i}", {"parity": "even" if i % 2 == 0 else "odd"})
    names: list[str] = []
    token = None
    pages = 0
    while True:
        page = core.list_namespaced_config_map(k8s_namespace, limit=3, _continue=token)
        pages += 1
        names += [item.metadata.name for item in page.items]
        token = page.metadata._continue
        if not token:
            break
    assert pages == 3
    assert sorted(n for n in names if n.startswith("page-")) == [f"page-{i}" for i in range(7)]
    odd = core.list_namespaced_config_map(k8s_namespace, label_selector="parity=odd")
    assert sorted(i.metadata.name for i in odd.items) == ["page-1", "page-3", "page-5"]
    one = core.list_namespaced_config_map(k8s_namespace, field_selector="metadata.name=page-4")
    assert [i.metadata.name for i in one.items] == ["page-4"]


def test_kubernetes_watch_resumes_from_a_resource_version(core: Any, k8s_namespace: str) -> None:
    import kubernetes

    first = k8s_create_cm(core, k8s_namespace, "before")
    since = first.metadata.resource_version
    k8s_create_cm(core, k8s_namespace, "after-1")
    k8s_create_cm(core, k8s_namespace, "after-2")
    watch = kubernetes.watch.Watch()
    seen = []
    for event in watch.stream(
        core.list_namespaced_config_map, k8s_namespace, resource_version=since, timeout_seconds=5
    ):
        seen.append((event["type"], event["object"].metadata.name))
        if len(seen) == 2:
            watch.stop()
    assert seen == [("ADDED", "after-1"), ("ADDED", "after-2")]


def test_kubernetes_client_recovers_from_410_by_relisting(core: Any, k8s_namespace: str) -> None:
    import kubernetes
    from kubernetes.client.rest import ApiException

    old = k8s_create_cm(core, k8s_namespace, "old").metadata.resource_version
    churn(lambda ns, name: k8s_create_cm(core, ns, name), k8s_namespace, HISTORY * 2)
    with pytest.raises(ApiException) as expired:
        for _ in kubernetes.watch.Watch().stream(
            core.list_namespaced_config_map, k8s_namespace, resource_version=old, timeout_seconds=5
        ):
            pass
    assert expired.value.status == 410
    # The informer's recovery: relist, then watch from the list's version.
    listing = core.list_namespaced_config_map(k8s_namespace)
    assert len(listing.items) == HISTORY * 2 + 1
    k8s_create_cm(core, k8s_namespace, "fresh")
    watch = kubernetes.watch.Watch()
    for event in watch.stream(
        core.list_namespaced_config_map,
        k8s_namespace,
        resource_version=listing.metadata.resource_version,
        timeout_seconds=5,
    ):
        assert (event["type"], event["object"].metadata.name) == ("ADDED", "fresh")
        watch.stop()


# --- kubernetes_asyncio ---------------------------------------------------------------------------


async def test_kubernetes_asyncio_crud_paging_watch_and_410(kubeconfig: Path) -> None:
    from kubernetes_asyncio import client, config, watch
    from kubernetes_asyncio.client.exceptions import ApiException

    api_client = await config.new_client_from_config(config_file=str(kubeconfig))
    async with api_client:
        core = client.CoreV1Api(api_client)
        ns = unique("kasync")
        await core.create_namespace(client.V1Namespace(metadata=client.V1ObjectMeta(name=ns)))

        async def create(name: str, labels: dict[str, str] | None = None) -> Any:
            body = client.V1ConfigMap(metadata=client.V1ObjectMeta(name=name, labels=labels), data={"a": "b"})
            return await core.create_namespaced_config_map(ns, body)

        first = await create("one", {"app": "a"})
        await create("two", {"app": "b"})
        await create("three", {"app": "a"})
        got = await core.read_namespaced_config_map("one", ns)
        assert got.metadata.uid == first.metadata.uid
        page = await core.list_namespaced_config_map(ns, limit=2)
        assert len(page.items) == 2 and page.metadata._continue
        rest = await core.list_namespaced_config_map(ns, limit=2, _continue=page.metadata._continue)
        assert len(rest.items) == 1 and not rest.metadata._continue
        selected = await core.list_namespaced_config_map(ns, label_selector="app=a")
        assert sorted(i.metadata.name for i in selected.items) == ["one", "three"]

        w = watch.Watch()
        seen = []
        async with w.stream(
            core.list_namespaced_config_map,
            ns,
            resource_version=first.metadata.resource_version,
            timeout_seconds=5,
        ) as stream:
            async for event in stream:
                seen.append(event["object"].metadata.name)
                if len(seen) == 2:
                    w.stop()
        assert seen == ["two", "three"]

        for _ in range(HISTORY * 2):
            await create(unique("churn"))
        with pytest.raises(ApiException) as expired:
            async with watch.Watch().stream(
                core.list_namespaced_config_map,
                ns,
                resource_version=first.metadata.resource_version,
                timeout_seconds=5,
            ) as stream:
                async for _ in stream:
                    pass
        assert expired.value.status == 410
        relisted = await core.list_namespaced_config_map(ns)
        assert len(relisted.items) == 3 + HISTORY * 2
        await core.delete_namespaced_config_map("one", ns)
        with pytest.raises(ApiException) as gone:
            await core.read_namespaced_config_map("one", ns)
        assert gone.value.status == 404


# --- lightkube ------------------------------------------------------------------------------------


def test_lightkube_crud_paging_selectors_watch_and_410(kubeconfig: Path) -> None:
    from lightkube import ApiError, Client, KubeConfig
    from lightkube.models.meta_v1 import ObjectMeta
    from lightkube.resources.core_v1 import ConfigMap, Namespace

    client = Client(config=KubeConfig.from_file(str(kubeconfig)), field_manager="lightkube-test")
    ns = unique("lk")
    client.create(Namespace(metadata=ObjectMeta(name=ns)))
    first = client.create(
        ConfigMap(metadata=ObjectMeta(name="one", labels={"tier": "a"}), data={"x": "1"}), namespace=ns
    )
    for i in range(4):
        client.create(ConfigMap(metadata=ObjectMeta(name=f"more-{i}", labels={"tier": "b"})), namespace=ns)
    assert client.get(ConfigMap, "one", namespace=ns).data == {"x": "1"}
    # lightkube pages transparently with chunk_size; every object must come back exactly once.
    names = [cm.metadata.name for cm in client.list(ConfigMap, namespace=ns, chunk_size=2)]
    assert sorted(names) == ["more-0", "more-1", "more-2", "more-3", "one"]
    assert [cm.metadata.name for cm in client.list(ConfigMap, namespace=ns, labels={"tier": "a"})] == ["one"]
    assert [
        cm.metadata.name for cm in client.list(ConfigMap, namespace=ns, fields={"metadata.name": "more-2"})
    ] == ["more-2"]
    patched = client.patch(ConfigMap, "one", {"data": {"y": "2"}}, namespace=ns)
    assert patched.data == {"x": "1", "y": "2"}

    seen = []
    for op, obj in client.watch(ConfigMap, namespace=ns, resource_version=first.metadata.resourceVersion):
        seen.append((op, obj.metadata.name))
        if len(seen) == 5:
            break
    assert seen == [("ADDED", f"more-{i}") for i in range(4)] + [("MODIFIED", "one")]

    for _ in range(HISTORY * 2):
        client.create(ConfigMap(metadata=ObjectMeta(name=unique("churn"))), namespace=ns)
    with pytest.raises(ApiError) as expired:
        for _ in client.watch(ConfigMap, namespace=ns, resource_version=first.metadata.resourceVersion):
            break
    assert expired.value.status.code == 410
    relisted = list(client.list(ConfigMap, namespace=ns))
    assert len(relisted) == 5 + HISTORY * 2
    client.delete(ConfigMap, "one", namespace=ns)
    with pytest.raises(ApiError) as gone:
        client.get(ConfigMap, "one", namespace=ns)
    assert gone.value.status.code == 404
