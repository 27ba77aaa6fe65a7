"""Per-kind behaviour of the built-in kinds: defaults, generation rules, selectable fields.

Defaults follow upstream's ``SetDefaults_*`` functions for the fields users see most (``kubectl get
-o yaml`` output, and what controllers read back); they are not exhaustive.
"""

from __future__ import annotations

import base64
import binascii
import ipaddress
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from kubevisor.api import BadRequest, FieldError, ResourceInfo
from kubevisor.server._registry import Strategy

__all__ = ["ClusterIPAllocator", "builtin_strategy", "default_pod_spec"]


# ------------------------------------------------------------------ pod defaults


def _default_container(container: dict[str, Any]) -> None:
    container.setdefault("terminationMessagePath", "/dev/termination-log")
    container.setdefault("terminationMessagePolicy", "File")
    container.setdefault("resources", {})
    if "imagePullPolicy" not in container:
        image = str(container.get("image") or "")
        tail = image.rsplit("/", 1)[-1]
        tagged = ":" in tail and not tail.endswith(":latest")
        digest = "@" in image
        container["imagePullPolicy"] = "IfNotPresent" if (tagged or digest) else "Always"
    for port in container.get("ports") or ():
        if isinstance(port, dict):
            port.setdefault("protocol", "TCP")


def default_pod_spec(spec: dict[str, Any]) -> None:
    """Upstream ``SetDefaults_PodSpec`` and container defaults (mutates ``spec``)."""
    spec.setdefault("restartPolicy", "Always")
    spec.setdefault("terminationGracePeriodSeconds", 30)
    spec.setdefault("dnsPolicy", "ClusterFirst")
    spec.setdefault("securityContext", {})
    spec.setdefault("schedulerName", "default-scheduler")
    for key in ("containers", "initContainers"):
        for container in spec.get(key) or ():
            if isinstance(container, dict):
                _default_container(container)


def _template_spec(obj: Mapping[str, Any]) -> dict[str, Any] | None:
    spec = obj.get("spec")
    template = spec.get("template") if isinstance(spec, dict) else None
    pod_spec = template.get("spec") if isinstance(template, dict) else None
    return pod_spec if isinstance(pod_spec, dict) else None


def _spec(obj: dict[str, Any]) -> dict[str, Any]:
    spec = obj.get("spec")
    if not isinstance(spec, dict):
        spec = obj["spec"] = {}
    return spec


# ------------------------------------------------------------------ strategies


@dataclass(frozen=True)
class _WorkloadStrategy(Strategy):
    """apps/v1 workloads and batch kinds: generation tracked, pod template defaulted."""

    generation: bool = True
    defaults: Mapping[str, Any] = field(default_factory=dict)
    rollout: tuple[str, Mapping[str, Any]] | None = None
    """``(spec key, rollingUpdate defaults)`` of the kind's update strategy, which defaults to
    RollingUpdate and, when it is one, gets its parameters filled in (also inside an empty ``{}``, as
    ``kubectl create deployment`` sends)."""

    def prepare_create(self, obj: dict[str, Any], info: ResourceInfo) -> None:
        self._default(obj)

    def prepare_update(self, obj: dict[str, Any], old: Mapping[str, Any], info: ResourceInfo) -> None:
        self._default(obj)

    def _default(self, obj: dict[str, Any]) -> None:
        spec = _spec(obj)
        for key, value in self.defaults.items():
            if key not in spec:
                spec[key] = value() if callable(value) else value
        if self.rollout is not None:
            key, rolling = self.rollout
            strategy = spec.get(key)
            if not isinstance(strategy, dict):
                strategy = spec[key] = {}
            strategy.setdefault("type", "RollingUpdate")
            if strategy["type"] == "RollingUpdate":
                params = strategy.get("rollingUpdate")
                if not isinstance(params, dict):
                    params = strategy["rollingUpdate"] = {}
                for name, default in rolling.items():
                    params.setdefault(name, default)
        pod_spec = _template_spec(obj)
        if pod_spec is not None:
            default_pod_spec(pod_spec)


_DEPLOYMENT_DEFAULTS = {
    "replicas": 1,
    "revisionHistoryLimit": 10,
    "progressDeadlineSeconds": 600,
}
_STATEFULSET_DEFAULTS = {
    "replicas": 1,
    "podManagementPolicy": "OrderedReady",
    "revisionHistoryLimit": 10,
    "persistentVolumeClaimRetentionPolicy": lambda: {"whenDeleted": "Retain", "whenScaled": "Retain"},
}
_DAEMONSET_DEFAULTS = {"revisionHistoryLimit": 10}
_CRONJOB_DEFAULTS = {
    "concurrencyPolicy": "Allow",
    "suspend": False,
    "successfulJobsHistoryLimit": 3,
    "failedJobsHistoryLimit": 1,
}


@dataclass(frozen=True)
class _JobStrategy(_WorkloadStrategy):
    """Jobs: generated selector and labels tying pods to the job's uid, as upstream does."""

    def prepare_create(self, obj: dict[str, Any], info: ResourceInfo) -> None:
        spec = _spec(obj)
        if "completions" not in spec and "parallelism" not in spec:
            spec["completions"] = 1
        spec.setdefault("parallelism", 1)
        spec.setdefault("backoffLimit", 6)
        spec.setdefault("completionMode", "NonIndexed")
        spec.setdefault("suspend", False)
        spec.setdefault("podReplacementPolicy", "TerminatingOrFailed")
        meta = obj["metadata"]
        uid, name = meta.get("uid", ""), meta.get("name", "")
        if not spec.get("manualSelector"):
            spec["selector"] = {"matchLabels": {"batch.kubernetes.io/controller-uid": uid}}
            template = spec.setdefault("template", {})
            if isinstance(template, dict):
                tmeta = template.setdefault("metadata", {})
                labels = tmeta.setdefault("labels", {}) if isinstance(tmeta, dict) else {}
                if isinstance(labels, dict):
                    labels.update(
                        {
                            "batch.kubernetes.io/controller-uid": uid,
                            "batch.kubernetes.io/job-name": name,
                            "controller-uid": uid,
                            "job-name": name,
                        }
                    )
        self._default(obj)


@dataclass(frozen=True)
class _NamespaceStrategy(Strategy):
    name_format: str = "label"
    selectable_fields: Mapping[str, str] | None = field(
        default_factory=lambda: {"status.phase": "status.phase"}
    )

    def prepare_create(self, obj: dict[str, Any], info: ResourceInfo) -> None:
        spec = _spec(obj)
        spec.setdefault("finalizers", ["kubernetes"])
        obj["status"] = {"phase": "Active"}
        self._label(obj)

    def prepare_update(self, obj: dict[str, Any], old: Mapping[str, Any], info: ResourceInfo) -> None:
        self._label(obj)

    @staticmethod
    def _label(obj: dict[str, Any]) -> None:
        meta = obj["metadata"]
        labels = meta.get("labels")
        if not isinstance(labels, dict):
            labels = meta["labels"] = {}
        labels["kubernetes.io/metadata.name"] = meta["name"]


def _decode_secret_data(obj: dict[str, Any]) -> None:
    data = obj.get("data")
    if data is None:
        return
    if not isinstance(data, dict):
        raise BadRequest('Secret in version "v1" cannot be handled as a Secret: data must be an object')
    for key, value in data.items():
        if not isinstance(value, str):
            raise BadRequest(
                f'Secret in version "v1" cannot be handled as a Secret: data[{key!r}] must be a base64 string'
            )
        try:
            base64.b64decode(value, validate=True)
        except (binascii.Error, ValueError) as exc:
            raise BadRequest(
                f'Secret in version "v1" cannot be handled as a Secret: illegal base64 data in data[{key!r}]'
            ) from exc


@dataclass(frozen=True)
class _SecretStrategy(Strategy):
    selectable_fields: Mapping[str, str] | None = field(default_factory=lambda: {"type": "type"})

    def prepare_create(self, obj: dict[str, Any], info: ResourceInfo) -> None:
        self._normalise(obj)

    def prepare_update(self, obj: dict[str, Any], old: Mapping[str, Any], info: ResourceInfo) -> None:
        self._normalise(obj)

    @staticmethod
    def _normalise(obj: dict[str, Any]) -> None:
        obj.setdefault("type", "Opaque")
        _decode_secret_data(obj)
        string_data = obj.pop("stringData", None)
        if string_data:
            if not isinstance(string_data, dict) or not all(isinstance(v, str) for v in string_data.values()):
                raise BadRequest(
                    'Secret in version "v1" cannot be handled as a Secret: stringData must map strings to strings'
                )
            data = obj.get("data")
            if not isinstance(data, dict):
                data = obj["data"] = {}
            for key, value in string_data.items():
                data[key] = base64.b64encode(value.encode()).decode()


class ClusterIPAllocator:
    """Hands out service ClusterIPs from a /12 (upstream's default 10.96.0.0/12).

    ``seed`` lists the addresses already in use; it is read lazily on the first allocation so that
    startup stays fast.  Released addresses are not reused (the range holds a million).
    """

    def __init__(self, cidr: str = "10.96.0.0/12", seed: Callable[[], Iterable[str]] | None = None) -> None:
        self.network = ipaddress.ip_network(cidr)
        self.seed = seed
        self._used: set[str] | None = None
        # .1 is the ``kubernetes`` Service's address in every real cluster.
        self._next = 2

    def reserve(self, ip: str) -> bool:
        used = self._in_use()
        if ip in used:
            return False
        used.add(ip)
        return True

    def allocate(self) -> str:
        used = self._in_use()
        size = self.network.num_addresses
        while self._next < size - 1:
            candidate = str(self.network.network_address + self._next)
            self._next += 1
            if candidate not in used:
                used.add(candidate)
                return candidate
        raise BadRequest("Internal error occurred: failed to allocate a serviceIP: range is full")

    def _in_use(self) -> set[str]:
        if self._used is None:
            self._used = set(self.seed() if self.seed else ())
        return self._used


class NodePortAllocator:
    def __init__(self) -> None:
        self._next = 30000

    def allocate(self) -> int:
        port = self._next
        self._next = 30000 + (self._next - 30000 + 1) % 2768
        return port


@dataclass(frozen=True)
class _ServiceStrategy(Strategy):
    name_format: str = "label"
    selectable_fields: Mapping[str, str] | None = field(
        default_factory=lambda: {"spec.clusterIP": "spec.clusterIP", "spec.type": "spec.type"}
    )
    return_deleted_object: bool = True
    ips: ClusterIPAllocator = field(default_factory=ClusterIPAllocator)
    ports: NodePortAllocator = field(default_factory=NodePortAllocator)

    def prepare_create(self, obj: dict[str, Any], info: ResourceInfo) -> None:
        spec = _spec(obj)
        kind = spec.setdefault("type", "ClusterIP")
        spec.setdefault("sessionAffinity", "None")
        if kind != "ExternalName":
            ip = spec.get("clusterIP")
            if not ip:
                ip = spec["clusterIP"] = self.ips.allocate()
            elif ip != "None" and not self.ips.reserve(ip):
                raise _invalid_ip(obj, ip)
            spec["clusterIPs"] = [ip]
            spec.setdefault("ipFamilies", ["IPv4"])
            spec.setdefault("ipFamilyPolicy", "SingleStack")
            spec.setdefault("internalTrafficPolicy", "Cluster")
        for port in spec.get("ports") or ():
            if isinstance(port, dict):
                port.setdefault("protocol", "TCP")
                if "targetPort" not in port and "port" in port:
                    port["targetPort"] = port["port"]
                if kind in ("NodePort", "LoadBalancer") and not port.get("nodePort"):
                    port["nodePort"] = self.ports.allocate()
        if kind in ("NodePort", "LoadBalancer"):
            spec.setdefault("externalTrafficPolicy", "Cluster")
        obj["status"] = {"loadBalancer": {}}

    def prepare_update(self, obj: dict[str, Any], old: Mapping[str, Any], info: ResourceInfo) -> None:
        spec = _spec(obj)
        old_spec = old.get("spec") or {}
        # clusterIP is immutable and allocated by the server: an update that omits it keeps it.
        for key in ("clusterIP", "clusterIPs", "ipFamilies", "ipFamilyPolicy"):
            if key not in spec and key in old_spec:
                spec[key] = old_spec[key]
        spec.setdefault("type", old_spec.get("type", "ClusterIP"))
        spec.setdefault("sessionAffinity", "None")
        for port in spec.get("ports") or ():
            if isinstance(port, dict):
                port.setdefault("protocol", "TCP")
                if "targetPort" not in port and "port" in port:
                    port["targetPort"] = port["port"]

    def validate(
        self, obj: Mapping[str, Any], old: Mapping[str, Any] | None, info: ResourceInfo
    ) -> list[FieldError]:
        if old is None:
            return []
        new_ip = (obj.get("spec") or {}).get("clusterIP")
        old_ip = (old.get("spec") or {}).get("clusterIP")
        if old_ip and new_ip != old_ip:
            return [FieldError.invalid("spec.clusterIPs[0]", new_ip, "may not change once set")]
        return []


def _invalid_ip(obj: Mapping[str, Any], ip: str) -> Exception:
    from kubevisor.api import Invalid

    return Invalid.for_fields(
        "Service",
        "",
        obj["metadata"].get("name"),
        [
            FieldError.invalid(
                "spec.clusterIPs", [ip], f"failed to allocate IP {ip}: provided IP is already allocated"
            )
        ],
    )


_POD_FIELDS = {
    "spec.nodeName": "spec.nodeName",
    "spec.restartPolicy": "spec.restartPolicy",
    "spec.schedulerName": "spec.schedulerName",
    "spec.serviceAccountName": "spec.serviceAccountName",
    "spec.hostNetwork": "spec.hostNetwork",
    "status.phase": "status.phase",
    "status.podIP": "status.podIP",
    "status.nominatedNodeName": "status.nominatedNodeName",
}


@dataclass(frozen=True)
class _PodStrategy(Strategy):
    selectable_fields: Mapping[str, str] | None = field(default_factory=lambda: dict(_POD_FIELDS))
    return_deleted_object: bool = True

    def prepare_create(self, obj: dict[str, Any], info: ResourceInfo) -> None:
        spec = _spec(obj)
        default_pod_spec(spec)
        spec.setdefault("enableServiceLinks", True)
        spec.setdefault("preemptionPolicy", "PreemptLowerPriority")
        spec.setdefault("priority", 0)
        spec.setdefault("serviceAccountName", "default")
        spec.setdefault("serviceAccount", spec["serviceAccountName"])
        obj["status"] = {"phase": "Pending", "qosClass": _qos_class(spec)}

    def prepare_update(self, obj: dict[str, Any], old: Mapping[str, Any], info: ResourceInfo) -> None:
        spec = _spec(obj)
        default_pod_spec(spec)

    def validate(
        self, obj: Mapping[str, Any], old: Mapping[str, Any] | None, info: ResourceInfo
    ) -> list[FieldError]:
        spec = obj.get("spec") or {}
        containers = spec.get("containers")
        errors: list[FieldError] = []
        if not containers:
            errors.append(FieldError.required("spec.containers", ""))
        else:
            for i, container in enumerate(containers):
                if not isinstance(container, dict) or not container.get("name"):
                    errors.append(FieldError.required(f"spec.containers[{i}].name", ""))
                if isinstance(container, dict) and not container.get("image") and old is None:
                    errors.append(FieldError.required(f"spec.containers[{i}].image", ""))
        return errors


def _qos_class(spec: Mapping[str, Any]) -> str:
    requests_or_limits = False
    guaranteed = True
    for container in spec.get("containers") or ():
        resources = container.get("resources") or {} if isinstance(container, dict) else {}
        limits, requests = resources.get("limits") or {}, resources.get("requests") or {}
        if limits or requests:
            requests_or_limits = True
        if not ("cpu" in limits and "memory" in limits):
            guaranteed = False
        elif any(requests.get(k, limits[k]) != limits[k] for k in ("cpu", "memory")):
            guaranteed = False
    if not requests_or_limits:
        return "BestEffort"
    return "Guaranteed" if guaranteed else "Burstable"


_EVENT_FIELDS = {
    "involvedObject.kind": "involvedObject.kind",
    "involvedObject.namespace": "involvedObject.namespace",
    "involvedObject.name": "involvedObject.name",
    "involvedObject.uid": "involvedObject.uid",
    "involvedObject.apiVersion": "involvedObject.apiVersion",
    "involvedObject.resourceVersion": "involvedObject.resourceVersion",
    "involvedObject.fieldPath": "involvedObject.fieldPath",
    "reason": "reason",
    "reportingComponent": "reportingComponent",
    "source": "source.component",
    "type": "type",
}
_EVENTS_V1_FIELDS = {
    "regarding.kind": "regarding.kind",
    "regarding.namespace": "regarding.namespace",
    "regarding.name": "regarding.name",
    "regarding.uid": "regarding.uid",
    "regarding.apiVersion": "regarding.apiVersion",
    "regarding.resourceVersion": "regarding.resourceVersion",
    "regarding.fieldPath": "regarding.fieldPath",
    "reason": "reason",
    "reportingController": "reportingController",
    "type": "type",
}

_GENERATION_KINDS = {
    ("networking.k8s.io", "Ingress"),
    ("networking.k8s.io", "NetworkPolicy"),
    ("networking.k8s.io", "IngressClass"),
    ("policy", "PodDisruptionBudget"),
    ("autoscaling", "HorizontalPodAutoscaler"),
    ("apiextensions.k8s.io", "CustomResourceDefinition"),
    ("admissionregistration.k8s.io", "ValidatingWebhookConfiguration"),
    ("admissionregistration.k8s.io", "MutatingWebhookConfiguration"),
    ("admissionregistration.k8s.io", "ValidatingAdmissionPolicy"),
    ("admissionregistration.k8s.io", "ValidatingAdmissionPolicyBinding"),
    ("scheduling.k8s.io", "PriorityClass"),
}


def builtin_strategy(info: ResourceInfo, *, cluster_ips: ClusterIPAllocator | None = None) -> Strategy:
    """The strategy of a built-in kind (a plain :class:`Strategy` for kinds without special rules)."""
    group, kind = info.group, info.kind
    if group == "" and kind == "Namespace":
        return _NamespaceStrategy()
    if group == "" and kind == "Secret":
        return _SecretStrategy()
    if group == "" and kind == "Service":
        return _ServiceStrategy(ips=cluster_ips or ClusterIPAllocator())
    if group == "" and kind == "Pod":
        return _PodStrategy()
    if group == "" and kind == "Event":
        return Strategy(selectable_fields=_EVENT_FIELDS)
    if group == "events.k8s.io" and kind == "Event":
        return Strategy(selectable_fields=_EVENTS_V1_FIELDS)
    if group == "" and kind == "Node":
        return Strategy(selectable_fields={"spec.unschedulable": "spec.unschedulable"})
    if group == "" and kind == "ReplicationController":
        return _WorkloadStrategy(selectable_fields={"status.replicas": "status.replicas"})
    if group == "apps" and kind == "Deployment":
        return _WorkloadStrategy(
            defaults=_DEPLOYMENT_DEFAULTS, rollout=("strategy", {"maxUnavailable": "25%", "maxSurge": "25%"})
        )
    if group == "apps" and kind == "ReplicaSet":
        return _WorkloadStrategy(
            defaults={"replicas": 1}, selectable_fields={"status.replicas": "status.replicas"}
        )
    if group == "apps" and kind == "StatefulSet":
        return _WorkloadStrategy(defaults=_STATEFULSET_DEFAULTS, rollout=("updateStrategy", {"partition": 0}))
    if group == "apps" and kind == "DaemonSet":
        return _WorkloadStrategy(
            defaults=_DAEMONSET_DEFAULTS, rollout=("updateStrategy", {"maxUnavailable": 1, "maxSurge": 0})
        )
    if group == "apps" and kind == "ControllerRevision":
        return Strategy()
    if group == "batch" and kind == "Job":
        return _JobStrategy(selectable_fields={"status.successful": "status.successful"})
    if group == "batch" and kind == "CronJob":
        return _WorkloadStrategy(defaults=_CRONJOB_DEFAULTS)
    if group == "rbac.authorization.k8s.io":
        return Strategy(name_format="path")
    if group == "certificates.k8s.io" and kind == "CertificateSigningRequest":
        return Strategy(generation=True, selectable_fields={"spec.signerName": "spec.signerName"})
    if (group, kind) in _GENERATION_KINDS:
        return Strategy(generation=True)
    return Strategy()
