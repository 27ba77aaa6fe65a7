"""The garbage collector over real HTTP (and real kubectl): cascading deletion in the three
propagation modes, chains, missing and invalid owners, and a restart mid-deletion.

Nothing here measures time: every wait is for a condition, bounded by a generous deadline.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from kubevisor.api import ResourceInfo
from kubevisor.server import (
    APIServer,
    GarbageCollector,
    NamespaceController,
    RequestOptions,
    ServerOptions,
    ServiceAccountController,
)
from kubevisor.server._gc import FINALIZER_FOREGROUND, FINALIZER_ORPHAN, WorkQueue, deletion_finalizers
from tests.server._api import DEADLINE, Api, eventually

CMS = "/api/v1/namespaces/{ns}/configmaps"
SECRETS = "/api/v1/namespaces/{ns}/secrets"
CLUSTERROLES = "/apis/rbac.authorization.k8s.io/v1/clusterroles"
HOLD = "example.com/hold"


def controllers(workers: int = 4) -> tuple[Any, ...]:
    return (GarbageCollector(workers=workers), NamespaceController(), ServiceAccountController())


@pytest.fixture
def server_options() -> ServerOptions:
    return ServerOptions(controllers=controllers())


@pytest.fixture
async def api(http: aiohttp.ClientSession) -> Api:
    return Api(http)


def ref(
    owner: dict[str, Any], *, block: bool | None = None, controller: bool | None = None
) -> dict[str, Any]:
    out = {
        "apiVersion": owner["apiVersion"],
        "kind": owner["kind"],
        "name": owner["metadata"]["name"],
        "uid": owner["metadata"]["uid"],
    }
    if block is not None:
        out["blockOwnerDeletion"] = block
    if controller is not None:
        out["controller"] = controller
    return out


def meta(name: str, *owners: dict[str, Any], finalizers: list[str] | None = None) -> dict[str, Any]:
    body: dict[str, Any] = {"name": name}
    if owners:
        body["ownerReferences"] = list(owners)
    if finalizers:
        body["finalizers"] = finalizers
    return {"metadata": body}


async def configmap(
    api: Api, name: str, *owners: dict[str, Any], ns: str = "default", **kw: Any
) -> dict[str, Any]:
    return await api.create(CMS.format(ns=ns), meta(name, *owners, **kw))


def cm(name: str, ns: str = "default") -> str:
    return f"{CMS.format(ns=ns)}/{name}"


# ---------------------------------------------------------------- the work queue


async def test_work_queue_hands_out_an_item_queued_twice_once() -> None:
    queue: WorkQueue[str] = WorkQueue()
    for item in ("a", "b", "a"):
        queue.add(item)
    assert [await queue.get(), await queue.get()] == ["a", "b"]
    assert len(queue) == 0


async def test_work_queue_hands_out_an_item_added_while_processing_again_after_done() -> None:
    queue: WorkQueue[str] = WorkQueue()
    queue.add("a")
    item = await queue.get()
    queue.add("a")  # changed while a worker holds it: not handed to a second worker ...
    assert len(queue) == 0
    queue.done(item)  # ... but handed out again once the first is done
    assert await queue.get() == "a"


async def test_work_queue_backs_off_exponentially_up_to_a_cap() -> None:
    queue: WorkQueue[str] = WorkQueue(base_delay=1.0, max_delay=5.0)
    try:
        assert [queue.retry("a") for _ in range(5)] == [1.0, 2.0, 4.0, 5.0, 5.0]
        queue.forget("a")
        assert queue.retry("a") == 1.0
    finally:
        queue.close()


# ---------------------------------------------------------------- DELETE sets the finalizers


@pytest.mark.parametrize(
    ("current", "options", "expected"),
    [
        ([], {}, []),
        ([], {"propagationPolicy": "Background"}, []),
        ([], {"propagationPolicy": "Foreground"}, [FINALIZER_FOREGROUND]),
        ([], {"propagationPolicy": "Orphan"}, [FINALIZER_ORPHAN]),
        ([HOLD], {"propagationPolicy": "Orphan"}, [HOLD, FINALIZER_ORPHAN]),
        ([FINALIZER_ORPHAN], {}, [FINALIZER_ORPHAN]),
        ([FINALIZER_FOREGROUND], {}, [FINALIZER_FOREGROUND]),
        ([FINALIZER_ORPHAN, HOLD], {"propagationPolicy": "Foreground"}, [HOLD, FINALIZER_FOREGROUND]),
        ([FINALIZER_FOREGROUND], {"propagationPolicy": "Background"}, []),
        ([], {"orphanDependents": True}, [FINALIZER_ORPHAN]),
        ([FINALIZER_ORPHAN], {"orphanDependents": False}, []),
    ],
)
def test_delete_options_decide_the_garbage_collection_finalizers(
    current: list[str], options: dict[str, Any], expected: list[str]
) -> None:
    assert deletion_finalizers(current, options) == expected


async def test_foreground_delete_answers_with_the_owner_marked_for_deletion(api: Api) -> None:
    owner = await configmap(api, "owner")
    await configmap(api, "dep", ref(owner, block=True), finalizers=[HOLD])
    status, body = await api.delete(cm("owner"), "Foreground")
    assert status == 200
    assert body["metadata"]["deletionTimestamp"]
    assert FINALIZER_FOREGROUND in body["metadata"]["finalizers"]


async def test_orphan_delete_answers_with_the_orphan_finalizer(api: Api) -> None:
    owner = await configmap(api, "owner", finalizers=[HOLD])
    status, body = await api.delete(cm("owner"), "Orphan")
    assert status == 200
    assert body["metadata"]["finalizers"] == [HOLD, FINALIZER_ORPHAN]
    assert owner["metadata"]["uid"] == body["metadata"]["uid"]


# ---------------------------------------------------------------- background


async def test_background_deletion_removes_the_owner_at_once_and_dependents_after(api: Api) -> None:
    owner = await configmap(api, "owner")
    for name in ("a", "b"):
        await api.create(SECRETS.format(ns="default"), meta(name, ref(owner)))
    status, body = await api.delete(cm("owner"), "Background")
    assert status == 200 and body["kind"] == "Status" and body["status"] == "Success"
    assert await api.gone(cm("owner"))
    await eventually(lambda: api.gone(f"{SECRETS.format(ns='default')}/a"))
    await eventually(lambda: api.gone(f"{SECRETS.format(ns='default')}/b"))


async def test_background_is_the_default_propagation_policy(api: Api) -> None:
    owner = await configmap(api, "owner")
    await configmap(api, "dep", ref(owner))
    status, _ = await api.delete(cm("owner"))
    assert status == 200
    await eventually(lambda: api.gone(cm("dep")))


async def test_background_deletion_honours_the_dependents_own_finalizers(api: Api) -> None:
    owner = await configmap(api, "owner")
    await configmap(api, "dep", ref(owner), finalizers=[HOLD])
    await api.delete(cm("owner"))

    async def terminating() -> bool:
        dep = await api.get(cm("dep"))
        return dep is not None and bool(dep["metadata"].get("deletionTimestamp"))

    await eventually(terminating)
    await api.release(cm("dep"))
    assert await api.gone(cm("dep"))


# ---------------------------------------------------------------- foreground


async def test_foreground_keeps_the_owner_until_blocking_dependents_are_gone(api: Api) -> None:
    owner = await configmap(api, "owner")
    await configmap(api, "blocking", ref(owner, block=True), finalizers=[HOLD])
    await configmap(api, "plain", ref(owner))
    await api.delete(cm("owner"), "Foreground")

    async def dependents_deleting() -> bool:
        blocking = await api.get(cm("blocking"))
        return (
            await api.gone(cm("plain"))
            and blocking is not None
            and "deletionTimestamp" in blocking["metadata"]
        )

    await eventually(dependents_deleting)
    held = await api.get(cm("owner"))
    assert held is not None and held["metadata"]["finalizers"] == [FINALIZER_FOREGROUND]
    await api.release(cm("blocking"))
    await eventually(lambda: api.gone(cm("owner")))


async def test_foreground_does_not_wait_for_dependents_that_do_not_block(api: Api) -> None:
    owner = await configmap(api, "owner")
    await configmap(api, "slow", ref(owner, block=False), finalizers=[HOLD])
    await api.delete(cm("owner"), "Foreground")
    await eventually(lambda: api.gone(cm("owner")))
    slow = await api.get(cm("slow"))
    assert slow is not None and slow["metadata"]["deletionTimestamp"]
    await api.release(cm("slow"))


async def test_foreground_owner_without_dependents_goes_at_once_after_its_finalizer(api: Api) -> None:
    await configmap(api, "lonely")
    status, body = await api.delete(cm("lonely"), "Foreground")
    assert status == 200 and body["metadata"]["finalizers"] == [FINALIZER_FOREGROUND]
    await eventually(lambda: api.gone(cm("lonely")))


async def test_foreground_owner_waits_for_its_other_finalizers_too(api: Api) -> None:
    await configmap(api, "owner", finalizers=[HOLD])
    await api.delete(cm("owner"), "Foreground")

    async def only_hold_left() -> bool:
        owner = await api.get(cm("owner"))
        return owner is not None and owner["metadata"]["finalizers"] == [HOLD]

    await eventually(only_hold_left)
    await api.release(cm("owner"))
    assert await api.gone(cm("owner"))


# ---------------------------------------------------------------- orphan


async def test_orphan_deletion_keeps_dependents_without_the_reference(api: Api) -> None:
    owner = await configmap(api, "owner")
    other = await configmap(api, "other")
    await configmap(api, "dep", ref(owner, block=True, controller=True), ref(other))
    await configmap(api, "sole", ref(owner))
    status, _ = await api.delete(cm("owner"), "Orphan")
    assert status == 200
    await eventually(lambda: api.gone(cm("owner")))
    dep = await api.get(cm("dep"))
    sole = await api.get(cm("sole"))
    assert dep is not None and dep["metadata"]["ownerReferences"] == [ref(other)]
    assert sole is not None and "ownerReferences" not in sole["metadata"]


async def test_orphan_finalizer_waits_for_the_owners_other_finalizers(api: Api) -> None:
    owner = await configmap(api, "owner", finalizers=[HOLD])
    await configmap(api, "dep", ref(owner))
    await api.delete(cm("owner"), "Orphan")

    async def released() -> bool:
        dep, held = await api.get(cm("dep")), await api.get(cm("owner"))
        assert dep is not None and held is not None
        return "ownerReferences" not in dep["metadata"] and held["metadata"]["finalizers"] == [HOLD]

    await eventually(released)
    await api.release(cm("owner"))
    assert await api.gone(cm("owner")) and not await api.gone(cm("dep"))


# ---------------------------------------------------------------- chains and scopes


async def test_background_deletion_cascades_down_a_chain(api: Api) -> None:
    top = await configmap(api, "top")
    middle = await configmap(api, "middle", ref(top))
    bottom = await configmap(api, "bottom", ref(middle))
    await configmap(api, "leaf", ref(bottom))
    await api.delete(cm("top"))
    for name in ("middle", "bottom", "leaf"):
        await eventually(lambda name=name: api.gone(cm(name)))


async def test_foreground_deletion_of_a_chain_removes_it_bottom_up(api: Api) -> None:
    top = await configmap(api, "top")
    middle = await configmap(api, "middle", ref(top, block=True))
    await configmap(api, "bottom", ref(middle, block=True), finalizers=[HOLD])
    await api.delete(cm("top"), "Foreground")

    async def middle_waits_in_foreground() -> bool:
        obj = await api.get(cm("middle"))
        bottom = await api.get(cm("bottom"))
        return (
            obj is not None
            and obj["metadata"].get("finalizers") == [FINALIZER_FOREGROUND]
            and bottom is not None
            and "deletionTimestamp" in bottom["metadata"]
        )

    await eventually(middle_waits_in_foreground)
    assert not await api.gone(cm("top"))
    await api.release(cm("bottom"))
    for name in ("middle", "top"):
        await eventually(lambda name=name: api.gone(cm(name)))


async def test_a_cluster_scoped_owner_collects_namespaced_dependents(api: Api) -> None:
    role = await api.create(CLUSTERROLES, {"metadata": {"name": "owner-role"}, "rules": []})
    for ns in ("default", "kube-public"):
        await configmap(api, "dep", ref(role), ns=ns)
    await api.delete(f"{CLUSTERROLES}/owner-role")
    for ns in ("default", "kube-public"):
        await eventually(lambda ns=ns: api.gone(cm("dep", ns)))


async def test_foreground_deletion_of_a_cluster_scoped_owner_collects_cluster_scoped_dependents(
    api: Api,
) -> None:
    role = await api.create(CLUSTERROLES, {"metadata": {"name": "parent"}, "rules": []})
    await api.create(
        CLUSTERROLES, {"metadata": {"name": "child", "ownerReferences": [ref(role)]}, "rules": []}
    )
    await api.delete(f"{CLUSTERROLES}/parent", "Foreground")
    await eventually(lambda: api.gone(f"{CLUSTERROLES}/child"))
    await eventually(lambda: api.gone(f"{CLUSTERROLES}/parent"))


# ---------------------------------------------------------------- missing and invalid owners


async def test_a_dependent_of_a_missing_owner_is_collected(api: Api) -> None:
    ghost = {"apiVersion": "v1", "kind": "ConfigMap", "name": "ghost", "uid": str(uuid.uuid4())}
    await configmap(api, "orphaned", ghost)
    await eventually(lambda: api.gone(cm("orphaned")))


async def test_an_owner_with_the_same_name_but_another_uid_counts_as_missing(api: Api) -> None:
    original = await configmap(api, "owner")
    await api.delete(cm("owner"))
    await configmap(api, "owner")  # same name, new uid
    await configmap(api, "dep", ref(original))
    await eventually(lambda: api.gone(cm("dep")))
    assert not await api.gone(cm("owner"))


async def test_a_dependent_with_a_live_owner_only_loses_its_dangling_references(api: Api) -> None:
    live = await configmap(api, "live")
    ghost = {"apiVersion": "v1", "kind": "ConfigMap", "name": "ghost", "uid": str(uuid.uuid4())}
    await configmap(api, "dep", ghost, ref(live))

    async def cleaned() -> bool:
        dep = await api.get(cm("dep"))
        assert dep is not None
        return dep["metadata"]["ownerReferences"] == [ref(live)]

    await eventually(cleaned)


async def test_an_owner_of_an_unknown_kind_blocks_collection(api: Api, api_server: APIServer) -> None:
    unknown = {"apiVersion": "example.com/v1", "kind": "Widget", "name": "w", "uid": str(uuid.uuid4())}
    missing = {"apiVersion": "v1", "kind": "ConfigMap", "name": "ghost", "uid": str(uuid.uuid4())}
    await configmap(api, "waits", unknown, missing)
    # A sentinel with only a missing owner is collected; the unknown kind keeps the other waiting
    # until the kind is served (it could be a CRD not installed yet).
    await configmap(api, "sentinel", missing)
    await eventually(lambda: api.gone(cm("sentinel")))
    assert not await api.gone(cm("waits"))
    api_server.add_resource(ResourceInfo("example.com", "v1", "Widget", "widgets", "widget", True))
    await eventually(lambda: api.gone(cm("waits")))


async def test_dependents_of_a_deleted_owner_go_even_if_its_kind_stops_being_served(
    api: Api, api_server: APIServer
) -> None:
    widgets = ResourceInfo("example.com", "v1", "Widget", "widgets", "widget", True)
    api_server.add_resource(widgets)
    owner = await api.create(
        "/apis/example.com/v1/namespaces/default/widgets",
        {"apiVersion": "example.com/v1", "kind": "Widget", "metadata": {"name": "w"}},
    )
    await configmap(api, "dep", ref(owner))
    # As when a CRD goes with its instances: the owner is deleted, then its kind is no longer served
    # before the collector gets to the dependent.
    await api_server.service.delete(widgets, "default", "w", {}, RequestOptions())
    api_server.registry.remove("example.com", "v1", "widgets")
    await eventually(lambda: api.gone(cm("dep")))


@pytest.fixture
async def serial() -> AsyncIterator[Api]:
    """A server whose collector has one worker, so that items are decided in the order queued: a
    sentinel collected after an item proves the item was decided."""
    async with APIServer(ServerOptions(controllers=controllers(workers=1))) as server:
        async with aiohttp.ClientSession(base_url=server.url) as session:
            yield Api(session)


async def events_for(api: Api, ns: str, name: str) -> list[dict[str, Any]]:
    status, body = await api.call("GET", f"/api/v1/namespaces/{ns}/events")
    assert status == 200
    return [e for e in body["items"] if e["involvedObject"]["name"] == name]


async def sentinel(api: Api, ns: str = "default") -> None:
    ghost = {"apiVersion": "v1", "kind": "ConfigMap", "name": "ghost", "uid": str(uuid.uuid4())}
    await configmap(api, "sentinel", ghost, ns=ns)
    await eventually(lambda: api.gone(cm("sentinel", ns)))


async def test_a_cross_namespace_owner_reference_is_treated_as_absent(serial: Api) -> None:
    api = serial
    await api.create("/api/v1/namespaces", {"metadata": {"name": "elsewhere"}})
    owner = await configmap(api, "owner")
    await configmap(api, "valid", ref(owner))
    local = await configmap(api, "local", ns="elsewhere")
    await configmap(api, "invalid", ref(owner), ns="elsewhere")
    await configmap(api, "mixed", ref(owner), ref(local), ns="elsewhere")
    # As upstream: the reference resolves in the dependent's own namespace, where no such owner
    # exists, so "invalid" is collected and "mixed" keeps only its valid owner ...
    await eventually(lambda: api.gone(cm("invalid", "elsewhere")))

    async def mixed_cleaned() -> bool:
        mixed = await api.get(cm("mixed", "elsewhere"))
        assert mixed is not None
        return mixed["metadata"]["ownerReferences"] == [ref(local)]

    await eventually(mixed_cleaned)
    # ... the real owner and its valid dependent are never touched ...
    await sentinel(api)
    assert not await api.gone(cm("owner")) and not await api.gone(cm("valid"))
    # ... and the invalid reference is reported as upstream reports it.
    (event,) = await events_for(api, "elsewhere", "invalid")
    assert event["type"] == "Warning" and event["reason"] == "OwnerRefInvalidNamespace"
    assert event["message"] == (
        f"ownerRef [v1/ConfigMap, namespace: elsewhere, name: owner, uid: {owner['metadata']['uid']}] "
        'does not exist in namespace "elsewhere"'
    )
    assert event["source"] == {"component": "garbage-collector-controller"}
    # Deleting the real owner still collects its valid dependent.
    await api.delete(cm("owner"))
    await eventually(lambda: api.gone(cm("valid")))


async def test_a_cluster_scoped_dependent_of_a_namespaced_owner_is_never_collected(serial: Api) -> None:
    api = serial
    owner = await configmap(api, "owner")
    await api.create(
        CLUSTERROLES, {"metadata": {"name": "stray", "ownerReferences": [ref(owner)]}, "rules": []}
    )

    async def reported() -> bool:
        return bool(await events_for(api, "default", "stray"))

    await eventually(reported)
    await api.delete(cm("owner"))
    await sentinel(api)
    assert not await api.gone(f"{CLUSTERROLES}/stray")
    (event,) = await events_for(api, "default", "stray")
    assert event["reason"] == "OwnerRefInvalidNamespace"
    assert "namespace" not in event["involvedObject"]


# ---------------------------------------------------------------- restarts


async def test_collection_resumes_after_a_restart(tmp_path: Path) -> None:
    offline = ServerOptions(data_dir=tmp_path, controllers=())
    async with APIServer(offline) as server, aiohttp.ClientSession(base_url=server.url) as session:
        api = Api(session)
        gone_owner = await configmap(api, "gone-owner")
        await configmap(api, "stale", ref(gone_owner))
        await api.delete(cm("gone-owner"))
        waiting = await configmap(api, "waiting", finalizers=[FINALIZER_FOREGROUND])
        await configmap(api, "blocker", ref(waiting, block=True))
        await api.delete(cm("waiting"))
        orphaning = await configmap(api, "orphaning", finalizers=[FINALIZER_ORPHAN])
        await configmap(api, "kept", ref(orphaning))
        await api.delete(cm("orphaning"))
        assert not await api.gone(cm("stale"))  # no collector ran
    online = ServerOptions(data_dir=tmp_path, controllers=controllers())
    async with APIServer(online) as server, aiohttp.ClientSession(base_url=server.url) as session:
        api = Api(session)
        for name in ("stale", "blocker", "waiting", "orphaning"):
            await eventually(lambda name=name: api.gone(cm(name)))
        kept = await api.get(cm("kept"))
        assert kept is not None and "ownerReferences" not in kept["metadata"]


# ---------------------------------------------------------------- kubectl


def kubectl_versions() -> list[str]:
    """The oldest and newest versioned kubectl beside the dispatcher (or plain kubectl)."""
    found = os.environ.get("KUBECTL") or shutil.which("kubectl")
    if found is None:
        return []
    folder = Path(os.path.realpath(found)).parent
    versioned = sorted(folder.glob("kubectl.1.*"), key=lambda p: int(p.name.rsplit(".", 1)[1]))
    if not versioned:
        return [found]
    return sorted({str(versioned[0]), str(versioned[-1])})


@pytest.fixture(params=kubectl_versions() or [pytest.param("", marks=pytest.mark.skip("kubectl absent"))])
def kubectl_bin(request: pytest.FixtureRequest) -> str:
    return str(request.param)


async def run_kubectl(binary: str, server: APIServer, tmp_path: Path, *args: str) -> str:
    config = server.write_kubeconfig(tmp_path / "kubeconfig")
    proc = await asyncio.create_subprocess_exec(
        binary,
        *args,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        env={**os.environ, "KUBECONFIG": str(config)},
    )
    out, err = await asyncio.wait_for(proc.communicate(), DEADLINE)
    assert proc.returncode == 0, f"kubectl {' '.join(args)}: {err.decode()}"
    return out.decode()


@pytest.mark.kubectl
@pytest.mark.parametrize("cascade", ["background", "foreground", "orphan"])
async def test_kubectl_delete_cascade(
    api: Api, api_server: APIServer, tmp_path: Path, kubectl_bin: str, cascade: str
) -> None:
    owner = await configmap(api, "owner")
    await configmap(api, "blocking", ref(owner, block=True), finalizers=[HOLD])
    await configmap(api, "plain", ref(owner))
    command = ["delete", "configmap", "owner", f"--cascade={cascade}"]
    if cascade == "foreground":
        # kubectl waits for the owner, which waits for "blocking": release it once it is terminating.
        task = asyncio.create_task(run_kubectl(kubectl_bin, api_server, tmp_path, *command))

        async def terminating() -> bool:
            obj = await api.get(cm("blocking"))
            return obj is not None and "deletionTimestamp" in obj["metadata"]

        await eventually(terminating)
        assert not await api.gone(cm("owner"))
        await api.release(cm("blocking"))
        output = await task
    else:
        output = await run_kubectl(kubectl_bin, api_server, tmp_path, *command)
    assert 'configmap "owner" deleted' in output
    assert await api.gone(cm("owner"))  # kubectl --wait returned: the owner is gone
    if cascade == "orphan":
        for name in ("blocking", "plain"):
            obj = await api.get(cm(name))
            assert obj is not None and "ownerReferences" not in obj["metadata"]
            assert "deletionTimestamp" not in obj["metadata"]
        await api.release(cm("blocking"))
    else:
        await eventually(lambda: api.gone(cm("plain")))
        if cascade == "background":
            await api.release(cm("blocking"))
        await eventually(lambda: api.gone(cm("blocking")))
