"""Server-side printing: ``meta.k8s.io/v1`` Tables for ``kubectl get``.

Columns reproduce upstream's printers (``pkg/printers/internalversion/printers.go``) for the common
kinds: the same names, types, formats and priorities (priority 1 columns appear with ``-o wide``).
Kinds without a printer get Name and Age.  Ages use upstream's ``HumanDuration``.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from datetime import datetime
from typing import Any

from kubevisor.api import ResourceInfo, parse_time
from kubevisor.server._conversion import events_v1_to_core_event

__all__ = [
    "AGE_DESCRIPTION",
    "NAME_COLUMN",
    "Cells",
    "Column",
    "Printer",
    "human_duration",
    "table",
    "table_columns",
    "table_rows",
]

Column = tuple[str, str, str, int, str]  # name, type, format, priority, description
Cells = Callable[[Mapping[str, Any], datetime], list[Any]]
Printer = tuple[Sequence[Column], Cells]
"""A kind's columns and the function computing one row's cells from an object and the time."""


def human_duration(seconds: float) -> str:
    """Upstream's ``duration.HumanDuration``."""
    if seconds < -1:
        return "<invalid>"
    if seconds < 0:
        return "0s"
    s = int(seconds)
    if s < 120:
        return f"{s}s"
    minutes = s // 60
    if minutes < 10:
        rest = s % 60
        return f"{minutes}m" if rest == 0 else f"{minutes}m{rest}s"
    if minutes < 180:
        return f"{minutes}m"
    hours = s // 3600
    if hours < 8:
        rest = minutes % 60
        return f"{hours}h" if rest == 0 else f"{hours}h{rest}m"
    if hours < 48:
        return f"{hours}h"
    if hours < 24 * 8:
        rest = hours % 24
        return f"{hours // 24}d" if rest == 0 else f"{hours // 24}d{rest}h"
    if hours < 24 * 365 * 2:
        return f"{hours // 24}d"
    if hours < 24 * 365 * 8:
        days = (hours // 24) % 365
        return f"{hours // 24 // 365}y" if days == 0 else f"{hours // 24 // 365}y{days}d"
    return f"{hours // 24 // 365}y"


def _age(ts: Any, now: datetime) -> str:
    if not isinstance(ts, str) or not ts:
        return "<unknown>"
    try:
        return human_duration((now - parse_time(ts)).total_seconds())
    except ValueError:
        return "<unknown>"


def _meta(obj: Mapping[str, Any]) -> Mapping[str, Any]:
    meta = obj.get("metadata")
    return meta if isinstance(meta, Mapping) else {}


def _get(obj: Any, *path: str, default: Any = None) -> Any:
    for part in path:
        if not isinstance(obj, Mapping):
            return default
        obj = obj.get(part)
    return default if obj is None else obj


def _selector(selector: Any) -> str:
    if not isinstance(selector, Mapping):
        return "<none>"
    parts = [f"{k}={v}" for k, v in sorted((selector.get("matchLabels") or {}).items())]
    for expr in selector.get("matchExpressions") or ():
        values = ",".join(expr.get("values") or ())
        op = expr.get("operator")
        key = expr.get("key", "")
        parts.append(
            {
                "In": f"{key} in ({values})",
                "NotIn": f"{key} notin ({values})",
                "Exists": key,
                "DoesNotExist": f"!{key}",
            }.get(op, key)
        )
    return ",".join(parts) or "<none>"


def _map_selector(selector: Any) -> str:
    if not isinstance(selector, Mapping) or not selector:
        return "<none>"
    return ",".join(f"{k}={v}" for k, v in sorted(selector.items()))


def _name(obj: Mapping[str, Any]) -> Any:
    """The Name cell."""
    return _meta(obj).get("name", "")


def _created(obj: Mapping[str, Any], now: datetime) -> str:
    """The Age cell."""
    return _age(_meta(obj).get("creationTimestamp"), now)


def _template_cells(spec: Any, *, selector: bool = True) -> list[Any]:
    """The Containers, Images and (unless ``selector`` is false) Selector cells of a workload whose
    ``spec`` holds a pod ``template`` and a ``selector``."""
    containers = [
        c for c in _get(spec, "template", "spec", "containers", default=[]) if isinstance(c, Mapping)
    ]
    cells: list[Any] = [
        ",".join(str(c.get("name", "")) for c in containers),
        ",".join(str(c.get("image", "")) for c in containers),
    ]
    if selector:
        cells.append(_selector(_get(spec, "selector")))
    return cells


# ---------------------------------------------------------------- per-kind cells


def _pod_status(pod: Mapping[str, Any]) -> tuple[str, int, int, int]:
    """(status reason, ready containers, total containers, restarts) as kubectl shows them."""
    spec, status = pod.get("spec") or {}, pod.get("status") or {}
    total = len(spec.get("containers") or ())
    reason = status.get("reason") or status.get("phase") or "Pending"
    ready = restarts = 0
    for init in status.get("initContainerStatuses") or ():
        restarts += int(init.get("restartCount") or 0)
    for cs in reversed(status.get("containerStatuses") or ()):
        restarts += int(cs.get("restartCount") or 0)
        state = cs.get("state") or {}
        if (state.get("waiting") or {}).get("reason"):
            reason = state["waiting"]["reason"]
        elif (state.get("terminated") or {}).get("reason"):
            reason = state["terminated"]["reason"]
        elif state.get("terminated") is not None:
            term = state["terminated"]
            reason = (
                f"Signal:{term['signal']}" if term.get("signal") else f"ExitCode:{term.get('exitCode', 0)}"
            )
        elif cs.get("ready") and state.get("running") is not None:  # present, even if empty
            ready += 1
    if _meta(pod).get("deletionTimestamp"):
        reason = "NodeLost" if status.get("reason") == "NodeLost" else "Terminating"
    return reason, ready, total, restarts


def _pod(obj: Mapping[str, Any], now: datetime) -> list[Any]:
    reason, ready, total, restarts = _pod_status(obj)
    gates = _get(obj, "spec", "readinessGates", default=[])
    return [
        _name(obj),
        f"{ready}/{total}",
        reason,
        str(restarts),
        _created(obj, now),
        _get(obj, "status", "podIP", default="<none>"),
        _get(obj, "spec", "nodeName", default="<none>"),
        _get(obj, "status", "nominatedNodeName", default="<none>"),
        f"0/{len(gates)}" if gates else "<none>",
    ]


def _deployment(obj: Mapping[str, Any], now: datetime) -> list[Any]:
    st = obj.get("status") or {}
    return [
        _name(obj),
        f"{st.get('readyReplicas', 0)}/{_get(obj, 'spec', 'replicas', default=0)}",
        st.get("updatedReplicas", 0),
        st.get("availableReplicas", 0),
        _created(obj, now),
        *_template_cells(_get(obj, "spec")),
    ]


def _replicaset(obj: Mapping[str, Any], now: datetime) -> list[Any]:
    st = obj.get("status") or {}
    return [
        _name(obj),
        _get(obj, "spec", "replicas", default=0),
        st.get("replicas", 0),
        st.get("readyReplicas", 0),
        _created(obj, now),
        *_template_cells(_get(obj, "spec")),
    ]


def _statefulset(obj: Mapping[str, Any], now: datetime) -> list[Any]:
    st = obj.get("status") or {}
    return [
        _name(obj),
        f"{st.get('readyReplicas', 0)}/{_get(obj, 'spec', 'replicas', default=0)}",
        _created(obj, now),
        *_template_cells(_get(obj, "spec"), selector=False),
    ]


def _daemonset(obj: Mapping[str, Any], now: datetime) -> list[Any]:
    st = obj.get("status") or {}
    return [
        _name(obj),
        st.get("desiredNumberScheduled", 0),
        st.get("currentNumberScheduled", 0),
        st.get("numberReady", 0),
        st.get("updatedNumberScheduled", 0),
        st.get("numberAvailable", 0),
        _map_selector(_get(obj, "spec", "template", "spec", "nodeSelector")),
        _created(obj, now),
        *_template_cells(_get(obj, "spec")),
    ]


def _job_status(obj: Mapping[str, Any]) -> str:
    conditions = {c.get("type"): c.get("status") for c in _get(obj, "status", "conditions", default=[])}
    for kind in ("Complete", "Failed", "FailureTarget", "SuccessCriteriaMet", "Suspended"):
        if conditions.get(kind) == "True":
            return {"FailureTarget": "FailureTarget", "SuccessCriteriaMet": "SuccessCriteriaMet"}.get(
                kind, kind
            )
    if _meta(obj).get("deletionTimestamp"):
        return "Terminating"
    return "Running"


def _job(obj: Mapping[str, Any], now: datetime) -> list[Any]:
    spec, st = obj.get("spec") or {}, obj.get("status") or {}
    completions = spec.get("completions")
    done = st.get("succeeded", 0)
    shown = (
        f"{done}/{completions}" if completions is not None else f"{done}/1 of {spec.get('parallelism', 1)}"
    )
    duration = ""
    start, end = st.get("startTime"), st.get("completionTime")
    if isinstance(start, str):
        try:
            finished = parse_time(end) if isinstance(end, str) else now
            duration = human_duration((finished - parse_time(start)).total_seconds())
        except ValueError:
            duration = ""
    return [
        _name(obj),
        _job_status(obj),
        shown,
        duration,
        _created(obj, now),
        *_template_cells(spec),
    ]


def _cronjob(obj: Mapping[str, Any], now: datetime) -> list[Any]:
    spec, st = obj.get("spec") or {}, obj.get("status") or {}
    last = st.get("lastScheduleTime")
    return [
        _name(obj),
        spec.get("schedule", ""),
        spec.get("timeZone") or "<none>",
        "True" if spec.get("suspend") else "False",
        len(st.get("active") or ()),
        _age(last, now) if last else "<none>",
        _created(obj, now),
        *_template_cells(_get(obj, "spec", "jobTemplate", "spec")),
    ]


def _service(obj: Mapping[str, Any], now: datetime) -> list[Any]:
    spec = obj.get("spec") or {}
    kind = spec.get("type", "ClusterIP")
    external: str
    ingress = [
        i.get("ip") or i.get("hostname") for i in _get(obj, "status", "loadBalancer", "ingress", default=[])
    ]
    if kind == "ExternalName":
        external = spec.get("externalName") or "<none>"
    elif kind == "LoadBalancer":
        ips = [x for x in ingress if x] + list(spec.get("externalIPs") or ())
        external = ",".join(ips) if ips else "<pending>"
    else:
        external = ",".join(spec.get("externalIPs") or ()) or "<none>"
    ports = []
    for port in spec.get("ports") or ():
        text = f"{port.get('port')}"
        if port.get("nodePort"):
            text += f":{port['nodePort']}"
        ports.append(f"{text}/{port.get('protocol', 'TCP')}")
    return [
        _name(obj),
        kind,
        spec.get("clusterIP") or "<none>",
        external,
        ",".join(ports) or "<none>",
        _created(obj, now),
        _map_selector(spec.get("selector")),
    ]


def _configmap(obj: Mapping[str, Any], now: datetime) -> list[Any]:
    count = len(obj.get("data") or {}) + len(obj.get("binaryData") or {})
    return [_name(obj), count, _created(obj, now)]


def _secret(obj: Mapping[str, Any], now: datetime) -> list[Any]:
    return [
        _name(obj),
        obj.get("type", "Opaque"),
        len(obj.get("data") or {}),
        _created(obj, now),
    ]


def _namespace(obj: Mapping[str, Any], now: datetime) -> list[Any]:
    return [
        _name(obj),
        _get(obj, "status", "phase", default=""),
        _created(obj, now),
    ]


def _event(obj: Mapping[str, Any], now: datetime) -> list[Any]:
    involved = obj.get("involvedObject") or {}
    first = obj.get("firstTimestamp") or obj.get("eventTime") or _meta(obj).get("creationTimestamp")
    last = obj.get("lastTimestamp") or first
    source = obj.get("source") or {}
    source_text = source.get("component") or obj.get("reportingComponent") or ""
    if source.get("host"):
        source_text += f", {source['host']}"
    kind = str(involved.get("kind", "")).lower()
    return [
        _age(last, now),
        obj.get("type", ""),
        obj.get("reason", ""),
        f"{kind}/{involved.get('name', '')}",
        involved.get("fieldPath", ""),
        source_text,
        str(obj.get("message", "")).strip(),
        _age(first, now),
        obj.get("count", 1),
        _name(obj),
    ]


def _lease(obj: Mapping[str, Any], now: datetime) -> list[Any]:
    return [
        _name(obj),
        _get(obj, "spec", "holderIdentity", default="<none>"),
        _created(obj, now),
    ]


def _serviceaccount(obj: Mapping[str, Any], now: datetime) -> list[Any]:
    return [
        _name(obj),
        len(obj.get("secrets") or ()),
        _created(obj, now),
    ]


def _ingress(obj: Mapping[str, Any], now: datetime) -> list[Any]:
    spec = obj.get("spec") or {}
    hosts = [r.get("host") for r in spec.get("rules") or () if r.get("host")]
    addresses = [
        i.get("ip") or i.get("hostname") for i in _get(obj, "status", "loadBalancer", "ingress", default=[])
    ]
    return [
        _name(obj),
        spec.get("ingressClassName") or "<none>",
        ",".join(hosts) or "*",
        ",".join(a for a in addresses if a),
        "80, 443" if spec.get("tls") else "80",
        _created(obj, now),
    ]


def _endpoints(obj: Mapping[str, Any], now: datetime) -> list[Any]:
    endpoints = []
    for subset in obj.get("subsets") or ():
        for address in subset.get("addresses") or ():
            for port in subset.get("ports") or [{}]:
                endpoints.append(
                    f"{address.get('ip')}:{port.get('port')}" if port else str(address.get("ip"))
                )
    return [
        _name(obj),
        ",".join(endpoints) or "<none>",
        _created(obj, now),
    ]


def _pvc(obj: Mapping[str, Any], now: datetime) -> list[Any]:
    spec, st = obj.get("spec") or {}, obj.get("status") or {}
    return [
        _name(obj),
        st.get("phase", "Pending"),
        spec.get("volumeName", ""),
        _get(st, "capacity", "storage", default=""),
        ",".join(st.get("accessModes") or ()),
        spec.get("storageClassName") or "<unset>",
        spec.get("volumeAttributesClassName") or "<unset>",
        _created(obj, now),
        spec.get("volumeMode", "Filesystem"),
    ]


def _rolebinding(obj: Mapping[str, Any], now: datetime) -> list[Any]:
    subjects = obj.get("subjects") or ()
    ref = obj.get("roleRef") or {}

    def of(kind: str) -> str:
        names = []
        for s in subjects:
            if s.get("kind") == kind:
                names.append(
                    f"{s['namespace']}/{s.get('name')}" if kind == "ServiceAccount" else s.get("name", "")
                )
        return ", ".join(names)

    return [
        _name(obj),
        f"{ref.get('kind', '')}/{ref.get('name', '')}",
        _created(obj, now),
        of("User"),
        of("Group"),
        of("ServiceAccount"),
    ]


def _created_at(obj: Mapping[str, Any], now: datetime) -> list[Any]:
    return [_name(obj), _meta(obj).get("creationTimestamp", "")]


def _pdb(obj: Mapping[str, Any], now: datetime) -> list[Any]:
    spec = obj.get("spec") or {}
    return [
        _name(obj),
        spec.get("minAvailable", "N/A"),
        spec.get("maxUnavailable", "N/A"),
        _get(obj, "status", "disruptionsAllowed", default=0),
        _created(obj, now),
    ]


def _hpa(obj: Mapping[str, Any], now: datetime) -> list[Any]:
    spec = obj.get("spec") or {}
    ref = spec.get("scaleTargetRef") or {}
    return [
        _name(obj),
        f"{ref.get('kind', '')}/{ref.get('name', '')}",
        "<unknown>",
        spec.get("minReplicas", 1),
        spec.get("maxReplicas", 0),
        _get(obj, "status", "currentReplicas", default=0),
        _created(obj, now),
    ]


def _default(obj: Mapping[str, Any], now: datetime) -> list[Any]:
    return [_name(obj), _created(obj, now)]


_NAME: Column = ("Name", "string", "name", 0, "Name must be unique within a namespace.")
AGE_DESCRIPTION = (
    "CreationTimestamp is a timestamp representing the server time when this object was created."
)
_AGE: Column = ("Age", "string", "", 0, AGE_DESCRIPTION)
NAME_COLUMN = _NAME


def _col(name: str, kind: str = "string", priority: int = 0, fmt: str = "", description: str = "") -> Column:
    return (name, kind, fmt, priority, description or name)


_CONTAINERS = _col("Containers", priority=1, description="Names of each container in the template.")
_IMAGES = _col("Images", priority=1, description="Images referenced by each container in the template.")
_SELECTOR = _col("Selector", priority=1, description="The label selector.")
_TEMPLATE = (_CONTAINERS, _IMAGES, _SELECTOR)
"""The columns of :func:`_template_cells`, after Age in every workload."""
_READY_PODS = _col("Ready", description="Number of the pod with ready state")

# Kinds that print alike: both Event APIs, the RBAC roles and bindings of either scope.
_EVENT_COLUMNS = (
    _col("Last Seen"),
    _col("Type"),
    _col("Reason"),
    _col("Object"),
    _col("Subobject", priority=1),
    _col("Source", priority=1),
    _col("Message"),
    _col("First Seen", priority=1),
    _col("Count", "integer", priority=1),
    _col("Name", priority=1, fmt="name"),
)
_CREATED_AT: Printer = ((_NAME, _col("Created At", "date")), _created_at)
_BINDING: Printer = (
    (
        _NAME,
        _col("Role"),
        _AGE,
        _col("Users", priority=1),
        _col("Groups", priority=1),
        _col("ServiceAccounts", priority=1),
    ),
    _rolebinding,
)

_PRINTERS: dict[tuple[str, str], Printer] = {
    ("", "Pod"): (
        [
            _NAME,
            _col("Ready", description="The aggregate readiness state of this pod for accepting traffic."),
            _col("Status", description="The aggregate status of the containers in this pod."),
            _col(
                "Restarts", description="The number of times the containers in this pod have been restarted."
            ),
            _AGE,
            _col("IP", priority=1, description="IP address assigned to this pod."),
            _col("Node", priority=1, description="Name of the node this pod is assigned to."),
            _col("Nominated Node", priority=1, description="Name of the node this pod is nominated to."),
            _col("Readiness Gates", priority=1, description="The readiness gates of this pod."),
        ],
        _pod,
    ),
    ("apps", "Deployment"): (
        [
            _NAME,
            _READY_PODS,
            _col(
                "Up-to-date",
                "integer",
                description="Total number of non-terminated pods targeted by this deployment that have the desired template spec.",
            ),
            _col(
                "Available",
                "integer",
                description="Total number of available pods (ready for at least minReadySeconds) targeted by this deployment.",
            ),
            _AGE,
            *_TEMPLATE,
        ],
        _deployment,
    ),
    ("apps", "ReplicaSet"): (
        [
            _NAME,
            _col("Desired", "integer", description="Number of desired pods."),
            _col("Current", "integer", description="Number of actual pods."),
            _col("Ready", "integer", description="Number of ready pods."),
            _AGE,
            *_TEMPLATE,
        ],
        _replicaset,
    ),
    ("apps", "StatefulSet"): (
        [_NAME, _READY_PODS, _AGE, _CONTAINERS, _IMAGES],
        _statefulset,
    ),
    ("apps", "DaemonSet"): (
        [
            _NAME,
            _col("Desired", "integer"),
            _col("Current", "integer"),
            _col("Ready", "integer"),
            _col("Up-to-date", "integer"),
            _col("Available", "integer"),
            _col("Node Selector"),
            _AGE,
            *_TEMPLATE,
        ],
        _daemonset,
    ),
    ("batch", "Job"): (
        [
            _NAME,
            _col("Status", description="Status of the job."),
            _col("Completions", description="The completion status of the job."),
            _col("Duration", description="Time required to complete the job."),
            _AGE,
            *_TEMPLATE,
        ],
        _job,
    ),
    ("batch", "CronJob"): (
        [
            _NAME,
            _col("Schedule"),
            _col("Timezone"),
            _col("Suspend", "boolean"),
            _col("Active", "integer"),
            _col("Last Schedule"),
            _AGE,
            *_TEMPLATE,
        ],
        _cronjob,
    ),
    ("", "Service"): (
        [
            _NAME,
            _col("Type"),
            _col("Cluster-IP"),
            _col("External-IP"),
            _col("Port(s)"),
            _AGE,
            _col("Selector", priority=1),
        ],
        _service,
    ),
    ("", "ConfigMap"): ([_NAME, _col("Data", "integer"), _AGE], _configmap),
    ("", "Secret"): ([_NAME, _col("Type"), _col("Data", "integer"), _AGE], _secret),
    ("", "Namespace"): ([_NAME, _col("Status"), _AGE], _namespace),
    ("", "Event"): (_EVENT_COLUMNS, _event),
    ("events.k8s.io", "Event"): (_EVENT_COLUMNS, lambda obj, now: _event(events_v1_to_core_event(obj), now)),
    ("coordination.k8s.io", "Lease"): ([_NAME, _col("Holder"), _AGE], _lease),
    ("", "ServiceAccount"): ([_NAME, _col("Secrets", "integer"), _AGE], _serviceaccount),
    ("networking.k8s.io", "Ingress"): (
        [_NAME, _col("Class"), _col("Hosts"), _col("Address"), _col("Ports"), _AGE],
        _ingress,
    ),
    ("", "Endpoints"): ([_NAME, _col("Endpoints"), _AGE], _endpoints),
    ("", "PersistentVolumeClaim"): (
        [
            _NAME,
            _col("Status"),
            _col("Volume"),
            _col("Capacity"),
            _col("Access Modes"),
            _col("StorageClass"),
            _col("VolumeAttributesClass"),
            _AGE,
            _col("VolumeMode", priority=1),
        ],
        _pvc,
    ),
    ("rbac.authorization.k8s.io", "Role"): _CREATED_AT,
    ("rbac.authorization.k8s.io", "ClusterRole"): _CREATED_AT,
    ("rbac.authorization.k8s.io", "RoleBinding"): _BINDING,
    ("rbac.authorization.k8s.io", "ClusterRoleBinding"): _BINDING,
    ("apiextensions.k8s.io", "CustomResourceDefinition"): _CREATED_AT,
    ("policy", "PodDisruptionBudget"): (
        [_NAME, _col("Min Available"), _col("Max Unavailable"), _col("Allowed Disruptions", "integer"), _AGE],
        _pdb,
    ),
    ("autoscaling", "HorizontalPodAutoscaler"): (
        [
            _NAME,
            _col("Reference"),
            _col("Targets"),
            _col("MinPods", "integer"),
            _col("MaxPods", "integer"),
            _col("Replicas", "integer"),
            _AGE,
        ],
        _hpa,
    ),
}


def _printer(info: ResourceInfo, printer: Printer | None = None) -> Printer:
    return printer or _PRINTERS.get((info.group, info.kind)) or ([_NAME, _AGE], _default)


def table_columns(info: ResourceInfo, printer: Printer | None = None) -> list[dict[str, Any]]:
    """The columnDefinitions of ``info``'s Table (``printer`` overrides the built-in one)."""
    columns, _ = _printer(info, printer)
    return [
        {"name": name, "type": kind, "format": fmt, "description": description, "priority": priority}
        for name, kind, fmt, priority, description in columns
    ]


def _row_object(obj: Mapping[str, Any], include_object: str) -> dict[str, Any] | None:
    if include_object == "None":
        return None
    if include_object == "Object":
        return dict(obj)
    return {"kind": "PartialObjectMetadata", "apiVersion": "meta.k8s.io/v1", "metadata": _meta(obj)}


def table_rows(
    info: ResourceInfo,
    objects: Sequence[Mapping[str, Any]],
    now: datetime,
    include_object: str = "Metadata",
    printer: Printer | None = None,
) -> list[dict[str, Any]]:
    _, cells = _printer(info, printer)
    rows = []
    for obj in objects:
        row: dict[str, Any] = {"cells": cells(obj, now)}
        embedded = _row_object(obj, include_object)
        if embedded is not None:
            row["object"] = embedded
        rows.append(row)
    return rows


def table(
    info: ResourceInfo,
    objects: Sequence[Mapping[str, Any]],
    now: datetime,
    *,
    resource_version: str = "",
    continue_token: str = "",
    include_object: str = "Metadata",
    with_columns: bool = True,
    remaining: int | None = None,
    printer: Printer | None = None,
) -> dict[str, Any]:
    """A ``meta.k8s.io/v1`` Table of ``objects``.  ``with_columns=False`` sends ``columnDefinitions:
    null`` as upstream does for every watch event after the first.  ``printer`` replaces the
    built-in printer (custom resources' ``additionalPrinterColumns``)."""
    meta: dict[str, Any] = {}
    if resource_version:
        meta["resourceVersion"] = resource_version
    if continue_token:
        meta["continue"] = continue_token
    if remaining is not None:
        meta["remainingItemCount"] = remaining
    return {
        "kind": "Table",
        "apiVersion": "meta.k8s.io/v1",
        "metadata": meta,
        "columnDefinitions": table_columns(info, printer) if with_columns else None,
        "rows": table_rows(info, objects, now, include_object, printer),
    }
