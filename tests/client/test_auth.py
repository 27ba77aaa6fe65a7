"""Credentials on the wire: bearer tokens, token files re-read, basic auth, impersonation, exec
plugins (a real script run as the plugin), client certificates and the TLS options."""

from __future__ import annotations

import base64
import json
import random
import stat
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer

from kubevisor.api import GroupVersionKind, Unauthorized
from kubevisor.client import (
    Client,
    ClientConfig,
    ClientOptions,
    CredentialError,
    ExecConfig,
    Impersonation,
    TransportError,
    config_from_kubeconfig,
)
from tests.client.conftest import FakeClock
from tests.client.fakeapi import FakeAPI
from tests.client.tls import https_server, make_pki

CM = GroupVersionKind("", "v1", "ConfigMap")


def auth_header(api: FakeAPI) -> str:
    return api.requests[-1].headers.get("Authorization", "")


async def test_static_bearer_token_is_sent(api: FakeAPI, clock: FakeClock) -> None:
    async with Client(ClientConfig(server=api.url, token="abc"), clock=clock) as client:
        await client.version()
    assert auth_header(api) == "Bearer abc"


async def test_basic_auth_is_sent(api: FakeAPI, clock: FakeClock) -> None:
    async with Client(ClientConfig(server=api.url, username="admin", password="pw"), clock=clock) as client:
        await client.version()
    assert auth_header(api) == "Basic " + base64.b64encode(b"admin:pw").decode()


async def test_impersonation_headers_are_sent(api: FakeAPI, clock: FakeClock) -> None:
    imp = Impersonation(user="jane", uid="42", groups=("devs", "ops"), extra=(("scopes/x", ("a",)),))
    async with Client(ClientConfig(server=api.url, token="t", impersonate=imp), clock=clock) as client:
        await client.version()
    headers = api.requests[-1].headers
    assert headers["Impersonate-User"] == "jane" and headers["Impersonate-Uid"] == "42"
    assert headers["Impersonate-Extra-scopes%2Fx"] == "a"
    # aiohttp's server folds repeated headers in a dict; both groups arrived.
    assert "Impersonate-Group" in headers


async def test_user_agent_is_sent(api: FakeAPI, clock: FakeClock) -> None:
    async with Client(
        ClientConfig(server=api.url), ClientOptions(user_agent="my-operator/1.0"), clock=clock
    ) as client:
        await client.version()
    assert api.requests[-1].headers["User-Agent"] == "my-operator/1.0"


async def test_token_file_is_reread_after_the_refresh_period(
    api: FakeAPI, clock: FakeClock, tmp_path: Path
) -> None:
    token = tmp_path / "token"
    token.write_text("first")
    config = ClientConfig(server=api.url, token="first", token_file=str(token))
    async with Client(config, clock=clock) as client:
        await client.version()
        assert auth_header(api) == "Bearer first"
        token.write_text("second\n")
        clock.advance(30)
        await client.version()
        assert auth_header(api) == "Bearer first"  # still within the minute
        clock.advance(31)
        await client.version()
        assert auth_header(api) == "Bearer second"


async def test_token_file_is_reread_at_once_after_a_401_and_the_request_retried(
    api: FakeAPI, clock: FakeClock, tmp_path: Path
) -> None:
    token = tmp_path / "token"
    token.write_text("old")
    api.authorize = lambda request: request.headers.get("Authorization") == "Bearer rotated"
    async with Client(
        ClientConfig(server=api.url, token="old", token_file=str(token)), clock=clock
    ) as client:
        token.write_text("rotated")
        await client.version()
    assert [r.headers["Authorization"] for r in api.requests] == ["Bearer old", "Bearer rotated"]


async def test_401_with_static_credentials_raises_unauthorized(api: FakeAPI, clock: FakeClock) -> None:
    api.authorize = lambda request: False
    async with Client(ClientConfig(server=api.url, token="bad"), clock=clock) as client:
        with pytest.raises(Unauthorized):
            await client.get(CM, "x")
    assert len(api.requests) == 1


# --------------------------------------------------------------------------------------------------
# exec plugins


def write_plugin(tmp_path: Path, *, api_version: str = "client.authentication.k8s.io/v1") -> Path:
    """An exec credential plugin: prints the token in ``token.txt`` with the expiry in
    ``expiry.txt`` (if any), records each run's KUBERNETES_EXEC_INFO and environment."""
    script = tmp_path / "plugin.py"
    script.write_text(
        f"""#!{sys.executable}
import json, os, pathlib, sys
here = pathlib.Path({str(tmp_path)!r})
runs = here / "runs.jsonl"
with runs.open("a") as f:
    f.write(json.dumps({{"info": json.loads(os.environ["KUBERNETES_EXEC_INFO"]), "argv": sys.argv[1:], "env": os.environ.get("PLUGIN_ENV")}}) + "\\n")
if (here / "fail.txt").exists():
    print("token service unreachable", file=sys.stderr)
    sys.exit(3)
if (here / "cert.pem").exists():
    status = {{"clientCertificateData": (here / "cert.pem").read_text(), "clientKeyData": (here / "key.pem").read_text()}}
else:
    status = {{"token": (here / "token.txt").read_text().strip()}}
if (here / "expiry.txt").exists():
    status["expirationTimestamp"] = (here / "expiry.txt").read_text().strip()
print(json.dumps({{"apiVersion": {api_version!r}, "kind": "ExecCredential", "status": status}}))
"""
    )
    script.chmod(script.stat().st_mode | stat.S_IXUSR)
    return script


def runs(tmp_path: Path) -> list[dict[str, Any]]:
    path = tmp_path / "runs.jsonl"
    return [json.loads(line) for line in path.read_text().splitlines()] if path.exists() else []


def exec_kubeconfig(server: str, plugin: Path, **exec_extra: Any) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Config",
        "current-context": "cloud",
        "clusters": [
            {
                "name": "cloud",
                "cluster": {
                    "server": server,
                    "extensions": [
                        {"name": "client.authentication.k8s.io/exec", "extension": {"audience": "k8s"}}
                    ],
                },
            }
        ],
        "users": [
            {
                "name": "cloud-user",
                "user": {
                    "exec": {
                        "apiVersion": "client.authentication.k8s.io/v1",
                        "command": str(plugin),
                        "args": ["get-token", "--cluster", "prod"],
                        "env": [{"name": "PLUGIN_ENV", "value": "from-kubeconfig"}],
                        "interactiveMode": "Never",
                        **exec_extra,
                    }
                },
            }
        ],
        "contexts": [{"name": "cloud", "context": {"cluster": "cloud", "user": "cloud-user"}}],
    }


async def test_exec_plugin_token_is_used_and_cached_without_expiry(
    api: FakeAPI, clock: FakeClock, tmp_path: Path
) -> None:
    plugin = write_plugin(tmp_path)
    (tmp_path / "token.txt").write_text("from-plugin")
    config = config_from_kubeconfig(exec_kubeconfig(api.url, plugin, provideClusterInfo=True))
    async with Client(config, clock=clock) as client:
        await client.version()
        await client.version()
    assert auth_header(api) == "Bearer from-plugin"
    recorded = runs(tmp_path)
    assert len(recorded) == 1
    assert recorded[0]["argv"] == ["get-token", "--cluster", "prod"]
    assert recorded[0]["env"] == "from-kubeconfig"
    info = recorded[0]["info"]
    assert info["kind"] == "ExecCredential" and info["apiVersion"] == "client.authentication.k8s.io/v1"
    assert info["spec"]["interactive"] is False
    assert info["spec"]["cluster"]["server"] == api.url
    assert info["spec"]["cluster"]["config"] == {"audience": "k8s"}


async def test_exec_plugin_is_not_given_cluster_info_unless_asked(
    api: FakeAPI, clock: FakeClock, tmp_path: Path
) -> None:
    plugin = write_plugin(tmp_path)
    (tmp_path / "token.txt").write_text("t")
    async with Client(config_from_kubeconfig(exec_kubeconfig(api.url, plugin)), clock=clock) as client:
        await client.version()
    assert "cluster" not in runs(tmp_path)[0]["info"]["spec"]


async def test_exec_credential_is_cached_until_its_expiration_timestamp(
    api: FakeAPI, clock: FakeClock, tmp_path: Path
) -> None:
    plugin = write_plugin(tmp_path)
    wall = [datetime(2030, 1, 1, tzinfo=UTC)]
    (tmp_path / "token.txt").write_text("one")
    (tmp_path / "expiry.txt").write_text("2030-01-01T00:10:00Z")
    config = config_from_kubeconfig(exec_kubeconfig(api.url, plugin))
    async with Client(config, clock=clock, wall_clock=lambda: wall[0]) as client:
        await client.version()
        (tmp_path / "token.txt").write_text("two")
        wall[0] += timedelta(minutes=9)
        await client.version()
        assert auth_header(api) == "Bearer one"
        wall[0] += timedelta(minutes=2)  # past expirationTimestamp
        await client.version()
        assert auth_header(api) == "Bearer two"
    assert len(runs(tmp_path)) == 2


async def test_exec_plugin_rerun_after_401_recovers_the_request(
    api: FakeAPI, clock: FakeClock, tmp_path: Path
) -> None:
    plugin = write_plugin(tmp_path)
    (tmp_path / "token.txt").write_text("stale")
    async with Client(config_from_kubeconfig(exec_kubeconfig(api.url, plugin)), clock=clock) as client:
        await client.version()
        assert len(runs(tmp_path)) == 1
        # The server revokes the token; the plugin would now issue a new one.
        api.authorize = lambda request: request.headers.get("Authorization") == "Bearer fresh"
        (tmp_path / "token.txt").write_text("fresh")
        await client.version()
    assert len(runs(tmp_path)) == 2
    assert [r.headers["Authorization"] for r in api.requests] == [
        "Bearer stale",
        "Bearer stale",
        "Bearer fresh",
    ]


async def test_exec_plugin_failure_reports_exit_code_and_stderr(
    api: FakeAPI, clock: FakeClock, tmp_path: Path
) -> None:
    plugin = write_plugin(tmp_path)
    (tmp_path / "fail.txt").write_text("")
    async with Client(config_from_kubeconfig(exec_kubeconfig(api.url, plugin)), clock=clock) as client:
        with pytest.raises(CredentialError, match="exit code 3: token service unreachable"):
            await client.version()


async def test_missing_exec_command_shows_the_install_hint(
    api: FakeAPI, clock: FakeClock, tmp_path: Path
) -> None:
    config = config_from_kubeconfig(
        exec_kubeconfig(
            api.url, tmp_path / "does-not-exist", installHint="install it with: brew install the-plugin"
        )
    )
    async with Client(config, clock=clock) as client:
        with pytest.raises(CredentialError, match="brew install the-plugin"):
            await client.version()


async def test_exec_plugin_answering_another_api_version_is_rejected(
    api: FakeAPI, clock: FakeClock, tmp_path: Path
) -> None:
    plugin = write_plugin(tmp_path, api_version="client.authentication.k8s.io/v1beta1")
    (tmp_path / "token.txt").write_text("t")
    async with Client(config_from_kubeconfig(exec_kubeconfig(api.url, plugin)), clock=clock) as client:
        with pytest.raises(
            CredentialError, match=r"plugin returned version client\.authentication\.k8s\.io/v1beta1"
        ):
            await client.version()


async def test_exec_plugin_with_interactive_mode_always_fails_clearly(
    api: FakeAPI, clock: FakeClock, tmp_path: Path
) -> None:
    config = ClientConfig(
        server=api.url,
        exec=ExecConfig(
            command="x", api_version="client.authentication.k8s.io/v1", interactive_mode="Always", user="u"
        ),
    )
    async with Client(config, clock=clock) as client:
        with pytest.raises(CredentialError, match="never has a terminal"):
            await client.version()


# --------------------------------------------------------------------------------------------------
# TLS


def echo_client_cert(request: web.Request) -> web.Response:
    assert request.transport is not None
    peer = request.transport.get_extra_info("peercert") or {}
    subject = dict(item[0] for item in peer.get("subject", ()))
    return web.json_response({"major": "1", "minor": "33", "clientCN": subject.get("commonName")})


async def test_tls_with_ca_data_client_certificate_and_server_name(clock: FakeClock) -> None:
    pki = make_pki("kubernetes.test")

    async def handler(request: web.Request) -> web.Response:
        return echo_client_cert(request)

    async with https_server(pki, handler, require_client_cert=True) as port:
        config = ClientConfig(
            server=f"https://127.0.0.1:{port}",
            ca_data=pki.ca.cert_pem,
            tls_server_name="kubernetes.test",
            client_certificate_data=pki.client.cert_pem,
            client_key_data=pki.client.key_pem,
        )
        async with Client(config, clock=clock) as client:
            assert (await client.version())["clientCN"] == "jane"


async def test_tls_server_name_mismatch_is_a_transport_error_not_retried(clock: FakeClock) -> None:
    pki = make_pki("kubernetes.test")

    async def handler(request: web.Request) -> web.Response:
        return echo_client_cert(request)

    async with https_server(pki, handler, require_client_cert=False) as port:
        config = ClientConfig(server=f"https://127.0.0.1:{port}", ca_data=pki.ca.cert_pem)
        async with Client(config, clock=clock) as client:
            with pytest.raises(TransportError, match=r"(?i)certificate"):
                await client.version()
    assert clock.sleeps == []


async def test_insecure_skip_tls_verify_accepts_an_unknown_server_certificate(clock: FakeClock) -> None:
    pki = make_pki("kubernetes.test")

    async def handler(request: web.Request) -> web.Response:
        return echo_client_cert(request)

    async with https_server(pki, handler, require_client_cert=False) as port:
        config = ClientConfig(server=f"https://127.0.0.1:{port}", insecure_skip_tls_verify=True)
        async with Client(config, clock=clock) as client:
            assert (await client.version())["clientCN"] is None


async def test_exec_plugin_client_certificate_is_presented(clock: FakeClock, tmp_path: Path) -> None:
    pki = make_pki("kubernetes.test")
    plugin = write_plugin(tmp_path)
    (tmp_path / "cert.pem").write_bytes(pki.client.cert_pem)
    (tmp_path / "key.pem").write_bytes(pki.client.key_pem)

    async def handler(request: web.Request) -> web.Response:
        return echo_client_cert(request)

    async with https_server(pki, handler, require_client_cert=True) as port:
        document = exec_kubeconfig(f"https://127.0.0.1:{port}", plugin)
        cluster = document["clusters"][0]["cluster"]
        cluster["certificate-authority-data"] = base64.b64encode(pki.ca.cert_pem).decode()
        cluster["tls-server-name"] = "kubernetes.test"
        async with Client(config_from_kubeconfig(document), clock=clock, rng=random.Random(1)) as client:
            assert (await client.version())["clientCN"] == "jane"


async def test_proxy_url_routes_requests_through_the_proxy(clock: FakeClock) -> None:
    seen: list[str] = []

    async def proxy(request: web.Request) -> web.Response:
        seen.append(str(request.url))
        return web.json_response({"major": "1", "minor": "33", "via": "proxy"})

    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", proxy)
    server = TestServer(app, host="127.0.0.1", port=0)
    await server.start_server()
    try:
        config = ClientConfig(
            server="http://kubernetes.invalid:6443", proxy_url=f"http://127.0.0.1:{server.port}"
        )
        async with Client(config, clock=clock) as client:
            assert (await client.version())["via"] == "proxy"
    finally:
        await server.close()
    assert seen and "kubernetes.invalid:6443/version" in seen[0]
