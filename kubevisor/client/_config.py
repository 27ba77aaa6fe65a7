"""Where the cluster is and who we are: kubeconfig files, in-cluster service accounts, explicit
configs, and :func:`load_config`, which picks among them as client-go does.

Everything here is resolved eagerly into a frozen :class:`ClientConfig` (files named by a kubeconfig
are read now, so that a bad path fails at start-up with the file named), except what must stay live:
token files are re-read and exec plugins are run by the client's authenticator.
"""

from __future__ import annotations

import base64
import binascii
import ipaddress
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final
from urllib.parse import urlsplit

import yaml

from kubevisor.client._errors import ConfigError

__all__ = [
    "DEFAULT_SERVICE_ACCOUNT_DIR",
    "ClientConfig",
    "ExecConfig",
    "Impersonation",
    "config_from_kubeconfig",
    "in_cluster_config",
    "load_config",
    "load_kubeconfig",
]

DEFAULT_SERVICE_ACCOUNT_DIR: Final = "/var/run/secrets/kubernetes.io/serviceaccount"
EXEC_API_VERSIONS: Final = ("client.authentication.k8s.io/v1", "client.authentication.k8s.io/v1beta1")
_EXEC_INFO_EXTENSION: Final = "client.authentication.k8s.io/exec"
_INTERACTIVE_MODES: Final = ("Never", "IfAvailable", "Always")

try:  # the C loader is an order of magnitude faster; fall back where libyaml is missing
    _YamlLoader: Any = yaml.CSafeLoader
except AttributeError:  # pragma: no cover
    _YamlLoader = yaml.SafeLoader


@dataclass(frozen=True)
class ExecConfig:
    """An exec credential plugin (``users[].user.exec``), as EKS, GKE and AKS configure them.

    The plugin is run with ``args`` and ``env`` added to this process's environment, and
    ``KUBERNETES_EXEC_INFO`` set to an ``ExecCredential`` request; it prints an ``ExecCredential``
    whose ``status`` carries a token or a client certificate/key pair and, optionally, the
    ``expirationTimestamp`` until which the client caches it.
    """

    command: str
    """The program: a name looked up on ``PATH``, or a path (relative ones resolved against the
    kubeconfig's directory, as client-go does)."""
    api_version: str
    """``client.authentication.k8s.io/v1`` or ``/v1beta1``; the plugin must answer in it."""
    args: tuple[str, ...] = ()
    env: tuple[tuple[str, str], ...] = ()
    """Extra environment variables, in order."""
    install_hint: str = ""
    """Shown when the command cannot be found."""
    provide_cluster_info: bool = False
    """Whether ``KUBERNETES_EXEC_INFO`` includes ``spec.cluster`` (server, CA, ...)."""
    interactive_mode: str = "IfAvailable"
    """``Never``, ``IfAvailable`` or ``Always``.  The client never has a terminal to offer, so
    ``Always`` fails when the plugin is run."""
    cluster_config: Any = field(default=None, compare=False)
    """``spec.cluster.config``: the cluster's ``client.authentication.k8s.io/exec`` extension."""
    user: str = ""
    """The kubeconfig user entry that declared the plugin (for messages)."""


@dataclass(frozen=True)
class Impersonation:
    """``as``/``as-uid``/``as-groups``/``as-user-extra``: act as another user (``Impersonate-*``
    headers); the real credentials must be allowed to impersonate."""

    user: str
    uid: str = ""
    groups: tuple[str, ...] = ()
    extra: tuple[tuple[str, tuple[str, ...]], ...] = ()


@dataclass(frozen=True)
class ClientConfig:
    """A resolved connection to one API server.  Secrets are kept out of ``repr``.

    Build one from a kubeconfig (:func:`load_kubeconfig`), the pod's service account
    (:func:`in_cluster_config`), :func:`load_config` (which picks as client-go does), or directly:
    ``ClientConfig(server="https://127.0.0.1:6443", ca_data=..., token=...)``.

    Credentials combine as in client-go: a client certificate may accompany any one of a bearer
    token (``token`` and/or ``token_file``), basic auth, or an exec plugin (whose result may itself
    be a certificate).  Raises :class:`ConfigError` for an unusable combination.
    """

    server: str
    """Base URL, ``https://host:port`` optionally with a path prefix (proxies such as Rancher serve
    clusters under one).  A trailing slash is removed."""
    namespace: str = "default"
    """The default namespace for namespaced requests that name none."""
    ca_data: bytes | None = field(default=None, repr=False)
    """PEM certificates trusted for the server; ``None`` trusts the system store."""
    insecure_skip_tls_verify: bool = False
    """Skip server certificate verification (never together with ``ca_data``)."""
    tls_server_name: str | None = None
    """The name to verify the server certificate against (and send as SNI) instead of the host."""
    proxy_url: str | None = None
    """An ``http://`` or ``https://`` proxy for every request; ``None`` consults the environment's
    ``HTTPS_PROXY``/``HTTP_PROXY``/``NO_PROXY``, never for loopback addresses."""
    disable_compression: bool = False
    """Do not ask for gzip-compressed responses."""
    client_certificate_data: bytes | None = field(default=None, repr=False)
    client_key_data: bytes | None = field(default=None, repr=False)
    token: str | None = field(default=None, repr=False)
    """A bearer token; with ``token_file`` also set, only the value used until the file is read."""
    token_file: str | None = None
    """A file holding the bearer token, re-read periodically (rotated service-account tokens)."""
    username: str | None = None
    password: str | None = field(default=None, repr=False)
    exec: ExecConfig | None = None
    impersonate: Impersonation | None = None
    source: str = ""
    """Where this came from, e.g. ``kubeconfig /home/u/.kube/config, context "kind-dev"``."""

    def __post_init__(self) -> None:
        where = f" ({self.source})" if self.source else ""
        server = self.server.rstrip("/")
        parts = urlsplit(server)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ConfigError(f"server {self.server!r} is not an http(s) URL with a host{where}")
        object.__setattr__(self, "server", server)
        if self.insecure_skip_tls_verify and self.ca_data:
            raise ConfigError(
                f"specifying a root certificates file with the insecure flag is not allowed{where}"
            )
        if (self.client_certificate_data is None) != (self.client_key_data is None):
            missing = "client key" if self.client_key_data is None else "client certificate"
            raise ConfigError(f"a client certificate needs its key and vice versa: {missing} missing{where}")
        methods = [
            name
            for name, present in (
                ("token", bool(self.token or self.token_file)),
                ("basicAuth", bool(self.username or self.password)),
                ("exec", self.exec is not None),
            )
            if present
        ]
        if len(methods) > 1:
            raise ConfigError(
                f"more than one authentication method found{where}; found {methods}, only one is allowed"
            )
        if self.proxy_url is not None and urlsplit(self.proxy_url).scheme not in ("http", "https"):
            raise ConfigError(
                f"proxy-url {self.proxy_url!r} is not supported{where}: only http:// and https:// proxies are"
            )

    @property
    def uses_tls(self) -> bool:
        return self.server.startswith("https://")


# --------------------------------------------------------------------------------------------------
# kubeconfig files


@dataclass
class _Entry:
    """One named cluster, user or context, and the file that defined it (for relative paths)."""

    body: Mapping[str, Any]
    origin: str
    base_dir: Path | None


@dataclass
class _Merged:
    clusters: dict[str, _Entry] = field(default_factory=dict)
    users: dict[str, _Entry] = field(default_factory=dict)
    contexts: dict[str, _Entry] = field(default_factory=dict)
    current_context: str = ""
    origins: list[str] = field(default_factory=list)

    def describe(self) -> str:
        return ", ".join(self.origins) if self.origins else "<no kubeconfig>"


class _EmptyConfig(ConfigError):
    """No context was selected: client-go's ``IsEmptyConfig``, upon which in-cluster is tried."""


def _merge_document(merged: _Merged, data: Any, origin: str, base_dir: Path | None) -> None:
    """Merge one kubeconfig document with client-go's rule: the first file to set a map key wins
    (whole entries, never field by field), and the first non-empty ``current-context`` wins."""
    merged.origins.append(origin)
    if data is None:
        return
    if not isinstance(data, Mapping):
        raise ConfigError(
            f"kubeconfig {origin}: expected a mapping at the top level, got {type(data).__name__}"
        )
    kind = data.get("kind")
    if kind not in (None, "", "Config"):
        raise ConfigError(f"kubeconfig {origin}: kind is {kind!r}, expected 'Config'")
    for section, body_key, target in (
        ("clusters", "cluster", merged.clusters),
        ("users", "user", merged.users),
        ("contexts", "context", merged.contexts),
    ):
        items = data.get(section)
        if items is None:
            continue
        if not isinstance(items, list):
            raise ConfigError(f"kubeconfig {origin}: {section} must be a list")
        for index, item in enumerate(items):
            if not isinstance(item, Mapping) or not isinstance(item.get("name"), str) or not item["name"]:
                raise ConfigError(f"kubeconfig {origin}: {section}[{index}] has no name")
            body = item.get(body_key)
            if body is None:
                body = {}
            if not isinstance(body, Mapping):
                raise ConfigError(f"kubeconfig {origin}: {section}[{index}].{body_key} must be a mapping")
            target.setdefault(item["name"], _Entry(body, origin, base_dir))
    current = data.get("current-context")
    if current is not None and not isinstance(current, str):
        raise ConfigError(f"kubeconfig {origin}: current-context must be a string")
    if current and not merged.current_context:
        merged.current_context = current


def _read_kubeconfig(path: Path) -> Any:
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError(f"kubeconfig {path}: cannot be read: {exc.strerror or exc}") from exc
    try:
        return yaml.load(text, Loader=_YamlLoader)  # a safe loader (CSafeLoader or SafeLoader)
    except yaml.YAMLError as exc:
        raise ConfigError(f"kubeconfig {path}: not valid YAML: {exc}") from exc


def load_kubeconfig(
    paths: str | os.PathLike[str] | Sequence[str | os.PathLike[str]],
    *,
    context: str | None = None,
    require_all: bool = True,
) -> ClientConfig:
    """Load one kubeconfig file, or merge several as ``KUBECONFIG`` does, and resolve a context.

    ``context`` overrides ``current-context``.  With ``require_all`` a missing file is an error (an
    explicit ``--kubeconfig``); without it missing files are skipped (``KUBECONFIG`` entries).
    Relative paths inside a file are resolved against that file's directory.

    Raises :class:`ConfigError` naming the file, context and field at fault.
    """
    if isinstance(paths, str | os.PathLike):
        paths = [paths]
    merged = _Merged()
    for raw in paths:
        path = Path(raw).expanduser()
        if not require_all and not path.exists():
            continue
        _merge_document(merged, _read_kubeconfig(path), str(path), path.resolve().parent)
    return _resolve(merged, context)


def config_from_kubeconfig(
    data: Mapping[str, Any] | str,
    *,
    context: str | None = None,
    source: str = "<kubeconfig>",
    base_dir: str | os.PathLike[str] | None = None,
) -> ClientConfig:
    """Resolve a kubeconfig given as a parsed mapping or as YAML text (e.g. the embedded server's).

    Relative paths are resolved against ``base_dir`` (default: the working directory).
    """
    if isinstance(data, str):
        try:
            data = yaml.load(data, Loader=_YamlLoader)  # a safe loader (CSafeLoader or SafeLoader)
        except yaml.YAMLError as exc:
            raise ConfigError(f"kubeconfig {source}: not valid YAML: {exc}") from exc
    merged = _Merged()
    _merge_document(merged, data, source, Path(base_dir) if base_dir is not None else None)
    return _resolve(merged, context)


class _Fields:
    """Typed access to one entry's fields, with errors that say where the field lives."""

    def __init__(self, entry: _Entry, where: str) -> None:
        self.body = entry.body
        self.entry = entry
        self.where = where

    def error(self, key: str, problem: str) -> ConfigError:
        return ConfigError(f"kubeconfig {self.entry.origin}: {self.where}.{key}: {problem}")

    def text(self, key: str) -> str | None:
        value = self.body.get(key)
        if value is None or value == "":
            return None
        if not isinstance(value, str):
            raise self.error(key, f"expected a string, got {type(value).__name__}")
        return value

    def flag(self, key: str) -> bool:
        value = self.body.get(key)
        if value is None:
            return False
        if not isinstance(value, bool):
            raise self.error(key, f"expected true or false, got {value!r}")
        return value

    def texts(self, key: str) -> tuple[str, ...]:
        value = self.body.get(key)
        if value is None:
            return ()
        if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
            raise self.error(key, "expected a list of strings")
        return tuple(value)

    def file(self, key: str) -> Path | None:
        value = self.text(key)
        if value is None:
            return None
        path = Path(value).expanduser()
        if not path.is_absolute() and self.entry.base_dir is not None:
            path = self.entry.base_dir / path
        return path

    def b64(self, key: str) -> bytes | None:
        value = self.text(key)
        if value is None:
            return None
        try:
            return base64.b64decode(value, validate=True)
        except (binascii.Error, ValueError) as exc:
            raise self.error(key, "is not valid base64") from exc

    def data_or_file(self, data_key: str, file_key: str) -> bytes | None:
        """``<x>-data`` (base64) wins over the ``<x>`` file, as in client-go."""
        data = self.b64(data_key)
        if data is not None:
            return data
        path = self.file(file_key)
        if path is None:
            return None
        try:
            return path.read_bytes()
        except OSError as exc:
            raise self.error(file_key, f"cannot read {path}: {exc.strerror or exc}") from exc


def _resolve(merged: _Merged, context: str | None) -> ClientConfig:
    files = merged.describe()
    name = context or merged.current_context
    if not name:
        raise _EmptyConfig(f"kubeconfig {files}: no context selected (current-context is not set)")
    ctx_entry = merged.contexts.get(name)
    if ctx_entry is None:
        known = ", ".join(sorted(merged.contexts)) or "none"
        raise ConfigError(f'kubeconfig {files}: context "{name}" not found (contexts: {known})')
    ctx = _Fields(ctx_entry, f"contexts[{name}].context")
    cluster_name = ctx.text("cluster")
    if cluster_name is None:
        raise ctx.error("cluster", "no cluster is named")
    cluster_entry = merged.clusters.get(cluster_name)
    if cluster_entry is None:
        raise ConfigError(f'kubeconfig {files}: cluster "{cluster_name}" was not found for context "{name}"')
    user_name = ctx.text("user")
    user_entry = _Entry({}, ctx_entry.origin, ctx_entry.base_dir)
    if user_name is not None:
        found = merged.users.get(user_name)
        if found is None:
            raise ConfigError(f'kubeconfig {files}: user "{user_name}" was not found for context "{name}"')
        user_entry = found
    cluster = _Fields(cluster_entry, f"clusters[{cluster_name}].cluster")
    user = _Fields(user_entry, f"users[{user_name}].user")

    server = cluster.text("server")
    if server is None:
        raise cluster.error("server", "no server found for the cluster")
    ca_data = cluster.data_or_file("certificate-authority-data", "certificate-authority")
    insecure = cluster.flag("insecure-skip-tls-verify")
    tls_server_name = cluster.text("tls-server-name")
    cert = user.data_or_file("client-certificate-data", "client-certificate")
    key = user.data_or_file("client-key-data", "client-key")
    if (cert is None) != (key is None):
        missing = (
            ("client-key-data", "client-key")
            if key is None
            else ("client-certificate-data", "client-certificate")
        )
        raise user.error(
            missing[0], f"{missing[0]} or {missing[1]} must be specified to use the clientCert method"
        )
    if "://" not in server:
        # client-go's DefaultServerURL: a bare host:port gets https when TLS is configured at all.
        tls = bool(ca_data or cert or insecure or tls_server_name)
        server = ("https://" if tls else "http://") + server

    token = user.text("token")
    token_file_path = user.file("tokenFile")
    token_file = str(token_file_path) if token_file_path is not None else None
    if token_file_path is not None and token is None:
        try:
            token = token_file_path.read_text(encoding="utf-8").strip() or None
        except OSError as exc:
            raise user.error("tokenFile", f"cannot read {token_file_path}: {exc.strerror or exc}") from exc
    if user.body.get("auth-provider") is not None:
        provider = user.body["auth-provider"]
        provider_name = provider.get("name") if isinstance(provider, Mapping) else None
        raise user.error(
            "auth-provider",
            f"the {provider_name or 'legacy'} auth-provider is not supported (client-go removed these); "
            "configure the provider's exec credential plugin instead (e.g. kubelogin, gke-gcloud-auth-plugin)",
        )
    exec_config = _exec_config(user, user_name or "", cluster, cluster_entry)
    proxy_url = cluster.text("proxy-url")
    try:
        return ClientConfig(
            server=server,
            namespace=ctx.text("namespace") or "default",
            ca_data=ca_data,
            insecure_skip_tls_verify=insecure,
            tls_server_name=tls_server_name,
            proxy_url=proxy_url,
            disable_compression=cluster.flag("disable-compression"),
            client_certificate_data=cert,
            client_key_data=key,
            token=token,
            token_file=token_file,
            username=user.text("username"),
            password=user.text("password"),
            exec=exec_config,
            impersonate=_impersonation(user),
            source=f'kubeconfig {files}, context "{name}"',
        )
    except _EmptyConfig:  # pragma: no cover - not raised by the constructor
        raise
    except ConfigError as exc:
        raise ConfigError(f"kubeconfig {files}: {exc}") from None


def _exec_config(user: _Fields, user_name: str, cluster: _Fields, cluster_entry: _Entry) -> ExecConfig | None:
    raw = user.body.get("exec")
    if raw is None:
        return None
    if not isinstance(raw, Mapping):
        raise user.error("exec", "must be a mapping")
    fields = _Fields(_Entry(raw, user.entry.origin, user.entry.base_dir), f"{user.where}.exec")
    command = fields.text("command")
    if command is None:
        raise fields.error(
            "command", f"command must be specified for {user_name} to use exec authentication plugin"
        )
    if os.sep in command and not Path(command).is_absolute() and user.entry.base_dir is not None:
        # client-go resolves a command only when it is a path, never a bare name looked up on PATH.
        command = str(user.entry.base_dir / command)
    api_version = fields.text("apiVersion")
    if api_version is None:
        raise fields.error(
            "apiVersion", f"apiVersion must be specified for {user_name} to use exec authentication plugin"
        )
    if api_version not in EXEC_API_VERSIONS:
        raise fields.error(
            "apiVersion",
            f"exec plugin API version {api_version!r} is not supported ({', '.join(EXEC_API_VERSIONS)})",
        )
    mode = fields.text("interactiveMode")
    if mode is None:
        if api_version.endswith("/v1"):
            raise fields.error(
                "interactiveMode",
                f"interactiveMode must be specified for {user_name} to use exec authentication plugin",
            )
        mode = "IfAvailable"  # the v1beta1 default
    if mode not in _INTERACTIVE_MODES:
        raise fields.error("interactiveMode", f"invalid interactiveMode for {user_name}: {mode!r}")
    env: list[tuple[str, str]] = []
    raw_env = raw.get("env") or []
    if not isinstance(raw_env, list):
        raise fields.error("env", "must be a list of {name, value}")
    for index, item in enumerate(raw_env):
        if not isinstance(item, Mapping) or not isinstance(item.get("name"), str) or not item["name"]:
            raise fields.error(
                f"env[{index}]",
                f"env variable name must be specified for {user_name} to use exec authentication plugin",
            )
        value = item.get("value", "")
        if not isinstance(value, str):
            raise fields.error(f"env[{index}].value", "expected a string")
        env.append((item["name"], value))
    cluster_config: Any = None
    extensions = cluster.body.get("extensions") or []
    if isinstance(extensions, list):
        for ext in extensions:
            if isinstance(ext, Mapping) and ext.get("name") == _EXEC_INFO_EXTENSION:
                cluster_config = ext.get("extension")
    return ExecConfig(
        command=command,
        api_version=api_version,
        args=fields.texts("args"),
        env=tuple(env),
        install_hint=fields.text("installHint") or "",
        provide_cluster_info=fields.flag("provideClusterInfo"),
        interactive_mode=mode,
        cluster_config=cluster_config,
        user=user_name,
    )


def _impersonation(user: _Fields) -> Impersonation | None:
    as_user = user.text("as")
    groups = user.texts("as-groups")
    uid = user.text("as-uid")
    raw_extra = user.body.get("as-user-extra") or {}
    if not isinstance(raw_extra, Mapping):
        raise user.error("as-user-extra", "must be a mapping of key to a list of strings")
    extra: list[tuple[str, tuple[str, ...]]] = []
    for key, values in raw_extra.items():
        if not isinstance(values, list) or not all(isinstance(v, str) for v in values):
            raise user.error(f"as-user-extra.{key}", "expected a list of strings")
        extra.append((str(key), tuple(values)))
    if as_user is None:
        if groups or uid or extra:
            raise user.error("as", "impersonating groups, a uid or extras requires a user (as)")
        return None
    return Impersonation(user=as_user, uid=uid or "", groups=groups, extra=tuple(extra))


# --------------------------------------------------------------------------------------------------
# in-cluster


def _in_cluster_possible(env: Mapping[str, str], sa_dir: Path) -> bool:
    return (
        bool(env.get("KUBERNETES_SERVICE_HOST"))
        and bool(env.get("KUBERNETES_SERVICE_PORT"))
        and (sa_dir / "token").is_file()
    )


def in_cluster_config(
    *,
    environ: Mapping[str, str] | None = None,
    service_account_dir: str | os.PathLike[str] = DEFAULT_SERVICE_ACCOUNT_DIR,
) -> ClientConfig:
    """The configuration of a pod: ``https://$KUBERNETES_SERVICE_HOST:$KUBERNETES_SERVICE_PORT``,
    the service account's ``ca.crt``, its ``token`` (re-read periodically, since kubelet rotates it)
    and its namespace (``$POD_NAMESPACE`` first, as client-go, then the ``namespace`` file).

    Raises :class:`ConfigError` when not running in a pod or the files are unreadable.
    """
    env = os.environ if environ is None else environ
    host, port = env.get("KUBERNETES_SERVICE_HOST", ""), env.get("KUBERNETES_SERVICE_PORT", "")
    if not host or not port:
        raise ConfigError(
            "unable to load in-cluster configuration, KUBERNETES_SERVICE_HOST and KUBERNETES_SERVICE_PORT must be defined"
        )
    sa_dir = Path(service_account_dir)
    token_path = sa_dir / "token"
    try:
        token = token_path.read_text(encoding="utf-8").strip()
    except OSError as exc:
        raise ConfigError(
            f"in-cluster configuration: cannot read the service account token {token_path}: {exc.strerror or exc}"
        ) from exc
    ca_path = sa_dir / "ca.crt"
    try:
        ca_data: bytes | None = ca_path.read_bytes()
    except FileNotFoundError:
        ca_data = None  # client-go logs and carries on with the system roots
    except OSError as exc:
        raise ConfigError(f"in-cluster configuration: cannot read {ca_path}: {exc.strerror or exc}") from exc
    namespace = env.get("POD_NAMESPACE", "")
    if not namespace:
        try:
            namespace = (sa_dir / "namespace").read_text(encoding="utf-8").strip()
        except OSError:
            namespace = ""
    try:
        is_v6 = ipaddress.ip_address(host).version == 6
    except ValueError:
        is_v6 = False
    authority = f"[{host}]:{port}" if is_v6 else f"{host}:{port}"
    return ClientConfig(
        server=f"https://{authority}",
        namespace=namespace or "default",
        ca_data=ca_data,
        token=token or None,
        token_file=str(token_path),
        source=f"in-cluster service account {sa_dir}",
    )


# --------------------------------------------------------------------------------------------------
# the one call


def load_config(
    path: str | os.PathLike[str] | None = None,
    *,
    context: str | None = None,
    environ: Mapping[str, str] | None = None,
    service_account_dir: str | os.PathLike[str] = DEFAULT_SERVICE_ACCOUNT_DIR,
) -> ClientConfig:
    """Pick the configuration as client-go's deferred loading rules do.

    1. ``path`` (an explicit ``--kubeconfig``): that file alone, which must exist;
    2. else ``$KUBECONFIG``: its files merged (first to set a key wins; missing files skipped);
    3. else ``~/.kube/config`` when it exists;
    4. when none of those selects a context (no file, or no ``current-context`` and no ``context``
       argument), the in-cluster service account, when ``KUBERNETES_SERVICE_HOST``/``PORT`` are set
       and its token file exists.

    ``environ`` replaces ``os.environ`` (for ``KUBECONFIG``, ``HOME`` and in-cluster variables).
    Raises :class:`ConfigError` naming what was tried when nothing applies, or the file/context/field
    at fault when a configuration is found but unusable (that never falls back to in-cluster).
    """
    env = os.environ if environ is None else environ
    if path is not None:
        files: list[str] = [os.fspath(path)]
        tried = f"kubeconfig {os.fspath(path)}"
        required = True
    elif env.get("KUBECONFIG"):
        files = []
        for item in env["KUBECONFIG"].split(os.pathsep):
            if item and item not in files:
                files.append(item)
        tried = f"KUBECONFIG={env['KUBECONFIG']}"
        required = False
    else:
        home = Path(env["HOME"]) if env.get("HOME") else Path.home()
        files = [str(home / ".kube" / "config")]
        tried = f"{files[0]}"
        required = False
    try:
        return load_kubeconfig(files, context=context, require_all=required)
    except _EmptyConfig as exc:
        sa_dir = Path(service_account_dir)
        if _in_cluster_possible(env, sa_dir):
            return in_cluster_config(environ=env, service_account_dir=sa_dir)
        raise ConfigError(
            f"no configuration has been provided: tried {tried} ({exc}) and the in-cluster service account "
            "(KUBERNETES_SERVICE_HOST/KUBERNETES_SERVICE_PORT not set or no token)"
        ) from None
