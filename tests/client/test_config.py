"""Configuration: kubeconfig shapes as real tools write them, the KUBECONFIG merge, in-cluster, and
the choice :func:`load_config` makes."""

from __future__ import annotations

import base64
from pathlib import Path
from typing import Any

import pytest
import yaml

from kubevisor.client import (
    ClientConfig,
    ConfigError,
    config_from_kubeconfig,
    in_cluster_config,
    load_config,
    load_kubeconfig,
)

CA_PEM = b"-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n"


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


def kubeconfig(
    *,
    current: str | None = "dev",
    clusters: dict[str, dict[str, Any]] | None = None,
    users: dict[str, dict[str, Any]] | None = None,
    contexts: dict[str, dict[str, Any]] | None = None,
) -> dict[str, Any]:
    document: dict[str, Any] = {
        "apiVersion": "v1",
        "kind": "Config",
        "preferences": {},
        "clusters": [{"name": n, "cluster": c} for n, c in (clusters or {}).items()],
        "users": [{"name": n, "user": u} for n, u in (users or {}).items()],
        "contexts": [{"name": n, "context": c} for n, c in (contexts or {}).items()],
    }
    if current is not None:
        document["current-context"] = current
    return document


def write(path: Path, document: dict[str, Any]) -> Path:
    path.write_text(yaml.safe_dump(document))
    return path


KIND_STYLE = kubeconfig(
    current="kind-dev",
    clusters={"kind-dev": {"server": "https://127.0.0.1:6443", "certificate-authority-data": b64(CA_PEM)}},
    users={"kind-dev": {"client-certificate-data": b64(b"CERT"), "client-key-data": b64(b"KEY")}},
    contexts={"kind-dev": {"cluster": "kind-dev", "user": "kind-dev"}},
)


def test_kind_style_kubeconfig_resolves_server_ca_and_client_certificate(tmp_path: Path) -> None:
    config = load_kubeconfig(write(tmp_path / "config", KIND_STYLE))
    assert config.server == "https://127.0.0.1:6443"
    assert config.ca_data == CA_PEM
    assert config.client_certificate_data == b"CERT"
    assert config.client_key_data == b"KEY"
    assert config.namespace == "default"
    assert 'context "kind-dev"' in config.source


def test_secrets_never_appear_in_the_config_repr() -> None:
    with_token = ClientConfig(
        server="https://k", token="s3cr3t-token", client_key_data=b"KEY", client_certificate_data=b"C"
    )
    with_password = ClientConfig(server="https://k", username="u", password="hunter2")
    assert "s3cr3t-token" not in repr(with_token) and "KEY" not in repr(with_token)
    assert "hunter2" not in repr(with_password)


def test_relative_file_references_resolve_against_the_kubeconfig_directory(tmp_path: Path) -> None:
    (tmp_path / "certs").mkdir()
    (tmp_path / "certs" / "ca.crt").write_bytes(CA_PEM)
    (tmp_path / "certs" / "client.crt").write_bytes(b"CERT")
    (tmp_path / "certs" / "client.key").write_bytes(b"KEY")
    document = kubeconfig(
        clusters={"c": {"server": "https://k:443", "certificate-authority": "certs/ca.crt"}},
        users={"u": {"client-certificate": "certs/client.crt", "client-key": "certs/client.key"}},
        contexts={"dev": {"cluster": "c", "user": "u", "namespace": "team-a"}},
    )
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    config = load_kubeconfig(write(tmp_path / "config", document))
    assert (config.ca_data, config.client_certificate_data, config.client_key_data) == (
        CA_PEM,
        b"CERT",
        b"KEY",
    )
    assert config.namespace == "team-a"


def test_inline_data_wins_over_a_file_reference(tmp_path: Path) -> None:
    document = kubeconfig(
        clusters={
            "c": {
                "server": "https://k",
                "certificate-authority": "/nonexistent/ca.crt",
                "certificate-authority-data": b64(CA_PEM),
            }
        },
        contexts={"dev": {"cluster": "c"}},
    )
    assert load_kubeconfig(write(tmp_path / "config", document)).ca_data == CA_PEM


def test_cluster_tls_options_are_carried(tmp_path: Path) -> None:
    document = kubeconfig(
        clusters={
            "c": {
                "server": "https://10.0.0.1:6443/",
                "insecure-skip-tls-verify": True,
                "tls-server-name": "kubernetes.default",
                "proxy-url": "http://proxy.internal:3128",
                "disable-compression": True,
            }
        },
        users={"u": {"token": "abc"}},
        contexts={"dev": {"cluster": "c", "user": "u"}},
    )
    config = load_kubeconfig(write(tmp_path / "config", document))
    assert config.server == "https://10.0.0.1:6443"
    assert config.insecure_skip_tls_verify and config.disable_compression
    assert config.tls_server_name == "kubernetes.default"
    assert config.proxy_url == "http://proxy.internal:3128"
    assert config.token == "abc"


def test_token_file_is_read_at_load_and_kept_for_rereading(tmp_path: Path) -> None:
    (tmp_path / "token").write_text("from-file\n")
    document = kubeconfig(
        clusters={"c": {"server": "https://k"}},
        users={"u": {"tokenFile": "token"}},
        contexts={"dev": {"cluster": "c", "user": "u"}},
    )
    config = load_kubeconfig(write(tmp_path / "config", document))
    assert config.token == "from-file"
    assert config.token_file == str(tmp_path / "token")


def test_basic_auth_and_impersonation_are_read(tmp_path: Path) -> None:
    document = kubeconfig(
        clusters={"c": {"server": "https://k"}},
        users={
            "u": {
                "username": "admin",
                "password": "pw",
                "as": "jane",
                "as-groups": ["devs", "ops"],
                "as-user-extra": {"scopes": ["a", "b"]},
            }
        },
        contexts={"dev": {"cluster": "c", "user": "u"}},
    )
    config = load_kubeconfig(write(tmp_path / "config", document))
    assert (config.username, config.password) == ("admin", "pw")
    assert config.impersonate is not None
    assert config.impersonate.user == "jane"
    assert config.impersonate.groups == ("devs", "ops")
    assert config.impersonate.extra == (("scopes", ("a", "b")),)


def test_eks_style_exec_plugin_is_parsed_with_env_and_args(tmp_path: Path) -> None:
    document = kubeconfig(
        clusters={
            "eks": {
                "server": "https://ABC.gr7.eu-west-1.eks.amazonaws.com",
                "certificate-authority-data": b64(CA_PEM),
            }
        },
        users={
            "eks-user": {
                "exec": {
                    "apiVersion": "client.authentication.k8s.io/v1beta1",
                    "command": "aws",
                    "args": ["--region", "eu-west-1", "eks", "get-token", "--cluster-name", "prod"],
                    "env": [{"name": "AWS_PROFILE", "value": "prod"}],
                    "provideClusterInfo": False,
                }
            }
        },
        contexts={"dev": {"cluster": "eks", "user": "eks-user"}},
    )
    config = load_kubeconfig(write(tmp_path / "config", document))
    assert config.exec is not None
    assert config.exec.command == "aws"  # a bare name stays a PATH lookup
    assert config.exec.args[-1] == "prod"
    assert config.exec.env == (("AWS_PROFILE", "prod"),)
    assert config.exec.interactive_mode == "IfAvailable"  # the v1beta1 default


def test_exec_command_given_as_a_relative_path_resolves_against_the_kubeconfig(tmp_path: Path) -> None:
    document = kubeconfig(
        clusters={"c": {"server": "https://k"}},
        users={
            "u": {
                "exec": {
                    "apiVersion": "client.authentication.k8s.io/v1",
                    "command": "./bin/plugin",
                    "interactiveMode": "Never",
                }
            }
        },
        contexts={"dev": {"cluster": "c", "user": "u"}},
    )
    config = load_kubeconfig(write(tmp_path / "config", document))
    assert config.exec is not None
    assert config.exec.command == str(tmp_path / "bin" / "plugin")


def test_v1_exec_plugin_without_interactive_mode_is_rejected_naming_the_user(tmp_path: Path) -> None:
    document = kubeconfig(
        clusters={"c": {"server": "https://k"}},
        users={"sso": {"exec": {"apiVersion": "client.authentication.k8s.io/v1", "command": "kubelogin"}}},
        contexts={"dev": {"cluster": "c", "user": "sso"}},
    )
    with pytest.raises(
        ConfigError, match="interactiveMode must be specified for sso to use exec authentication plugin"
    ):
        load_kubeconfig(write(tmp_path / "config", document))


def test_exec_plugin_with_an_unknown_api_version_is_rejected(tmp_path: Path) -> None:
    document = kubeconfig(
        clusters={"c": {"server": "https://k"}},
        users={"u": {"exec": {"apiVersion": "client.authentication.k8s.io/v1alpha1", "command": "x"}}},
        contexts={"dev": {"cluster": "c", "user": "u"}},
    )
    with pytest.raises(ConfigError, match=r"users\[u\]\.user\.exec\.apiVersion"):
        load_kubeconfig(write(tmp_path / "config", document))


def test_legacy_auth_provider_is_rejected_with_a_pointer_to_exec_plugins(tmp_path: Path) -> None:
    document = kubeconfig(
        clusters={"c": {"server": "https://k"}},
        users={"u": {"auth-provider": {"name": "gcp", "config": {}}}},
        contexts={"dev": {"cluster": "c", "user": "u"}},
    )
    with pytest.raises(ConfigError, match=r"gcp auth-provider is not supported.*exec"):
        load_kubeconfig(write(tmp_path / "config", document))


def test_missing_context_error_names_the_file_and_the_known_contexts(tmp_path: Path) -> None:
    path = write(tmp_path / "config", KIND_STYLE)
    with pytest.raises(ConfigError) as caught:
        load_kubeconfig(path, context="prod")
    message = str(caught.value)
    assert str(path) in message and 'context "prod" not found' in message and "kind-dev" in message


def test_context_naming_a_missing_cluster_or_user_is_an_error(tmp_path: Path) -> None:
    document = kubeconfig(clusters={}, contexts={"dev": {"cluster": "gone", "user": "u"}})
    with pytest.raises(ConfigError, match='cluster "gone" was not found for context "dev"'):
        load_kubeconfig(write(tmp_path / "a", document))
    document = kubeconfig(
        clusters={"c": {"server": "https://k"}}, contexts={"dev": {"cluster": "c", "user": "ghost"}}
    )
    with pytest.raises(ConfigError, match='user "ghost" was not found for context "dev"'):
        load_kubeconfig(write(tmp_path / "b", document))


def test_malformed_fields_are_reported_with_their_path(tmp_path: Path) -> None:
    document = kubeconfig(
        clusters={"c": {"server": "https://k", "certificate-authority-data": "not base64!!"}},
        contexts={"dev": {"cluster": "c"}},
    )
    with pytest.raises(
        ConfigError, match=r"clusters\[c\]\.cluster\.certificate-authority-data: is not valid base64"
    ):
        load_kubeconfig(write(tmp_path / "a", document))
    document = kubeconfig(
        clusters={"c": {"server": "https://k", "insecure-skip-tls-verify": "yes"}},
        contexts={"dev": {"cluster": "c"}},
    )
    with pytest.raises(ConfigError, match="insecure-skip-tls-verify: expected true or false"):
        load_kubeconfig(write(tmp_path / "b", document))


def test_unreadable_certificate_file_is_reported_with_its_path(tmp_path: Path) -> None:
    document = kubeconfig(
        clusters={"c": {"server": "https://k", "certificate-authority": "missing.crt"}},
        contexts={"dev": {"cluster": "c"}},
    )
    with pytest.raises(ConfigError, match=r"certificate-authority: cannot read .*missing\.crt"):
        load_kubeconfig(write(tmp_path / "config", document))


def test_invalid_yaml_and_unreadable_files_name_the_file(tmp_path: Path) -> None:
    bad = tmp_path / "bad"
    bad.write_text("clusters: [\n")
    with pytest.raises(ConfigError, match=f"kubeconfig {bad}: not valid YAML"):
        load_kubeconfig(bad)
    with pytest.raises(ConfigError, match="cannot be read"):
        load_kubeconfig(tmp_path / "absent")


def test_two_authentication_methods_for_one_user_are_rejected(tmp_path: Path) -> None:
    document = kubeconfig(
        clusters={"c": {"server": "https://k"}},
        users={"u": {"token": "t", "username": "a", "password": "b"}},
        contexts={"dev": {"cluster": "c", "user": "u"}},
    )
    with pytest.raises(ConfigError, match="more than one authentication method"):
        load_kubeconfig(write(tmp_path / "config", document))


def test_insecure_skip_verify_with_a_ca_is_rejected() -> None:
    with pytest.raises(ConfigError, match="insecure flag is not allowed"):
        ClientConfig(server="https://k", ca_data=CA_PEM, insecure_skip_tls_verify=True)


def test_socks_proxy_is_rejected_clearly() -> None:
    with pytest.raises(ConfigError, match="only http:// and https:// proxies"):
        ClientConfig(server="https://k", proxy_url="socks5://127.0.0.1:1080")


def test_server_without_a_scheme_defaults_to_https_when_tls_is_configured() -> None:
    with_tls = config_from_kubeconfig(
        kubeconfig(
            clusters={"c": {"server": "k.example:6443", "certificate-authority-data": b64(CA_PEM)}},
            contexts={"dev": {"cluster": "c"}},
        )
    )
    plain = config_from_kubeconfig(
        kubeconfig(clusters={"c": {"server": "127.0.0.1:8080"}}, contexts={"dev": {"cluster": "c"}})
    )
    assert with_tls.server == "https://k.example:6443"
    assert plain.server == "http://127.0.0.1:8080"


def test_server_path_prefix_is_kept_for_proxied_clusters() -> None:
    config = config_from_kubeconfig(
        kubeconfig(
            clusters={"c": {"server": "https://rancher.example/k8s/clusters/c-abc"}},
            contexts={"dev": {"cluster": "c"}},
        )
    )
    assert config.server == "https://rancher.example/k8s/clusters/c-abc"


def test_config_from_yaml_text_like_the_embedded_servers_kubeconfig() -> None:
    text = yaml.safe_dump(
        kubeconfig(
            clusters={"kv": {"server": "http://127.0.0.1:9000"}},
            users={"admin": {"token": "t"}},
            contexts={"dev": {"cluster": "kv", "user": "admin"}},
        )
    )
    config = config_from_kubeconfig(text)
    assert config.server == "http://127.0.0.1:9000" and config.token == "t"


# --------------------------------------------------------------------------------------------------
# the KUBECONFIG merge


def test_kubeconfig_list_merge_first_file_wins_per_key(tmp_path: Path) -> None:
    first = write(
        tmp_path / "first",
        kubeconfig(
            current="alpha",
            clusters={"shared": {"server": "https://first"}},
            contexts={"alpha": {"cluster": "shared", "namespace": "from-first"}},
        ),
    )
    second = write(
        tmp_path / "second",
        kubeconfig(
            current="beta",
            clusters={"shared": {"server": "https://second"}, "only-second": {"server": "https://only"}},
            contexts={
                "alpha": {"cluster": "only-second"},
                "beta": {"cluster": "only-second", "namespace": "b"},
            },
        ),
    )
    environ = {"KUBECONFIG": f"{first}:{tmp_path / 'missing'}:{second}", "HOME": str(tmp_path)}
    config = load_config(environ=environ)
    assert config.server == "https://first"  # current-context and its entries from the first file
    assert config.namespace == "from-first"
    beta = load_config(context="beta", environ=environ)
    assert beta.server == "https://only" and beta.namespace == "b"  # entries only the second file has


def test_current_context_comes_from_the_first_file_that_sets_it(tmp_path: Path) -> None:
    only_clusters = write(
        tmp_path / "clusters", kubeconfig(current=None, clusters={"c": {"server": "https://c"}})
    )
    with_context = write(tmp_path / "contexts", kubeconfig(current="dev", contexts={"dev": {"cluster": "c"}}))
    config = load_config(environ={"KUBECONFIG": f"{only_clusters}:{with_context}"})
    assert config.server == "https://c"


def test_relative_paths_in_merged_files_resolve_against_their_own_file(tmp_path: Path) -> None:
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    (tmp_path / "b" / "ca.crt").write_bytes(CA_PEM)
    first = write(tmp_path / "a" / "config", kubeconfig(contexts={"dev": {"cluster": "c"}}))
    second = write(
        tmp_path / "b" / "config",
        kubeconfig(current=None, clusters={"c": {"server": "https://c", "certificate-authority": "ca.crt"}}),
    )
    assert load_config(environ={"KUBECONFIG": f"{first}:{second}"}).ca_data == CA_PEM


# --------------------------------------------------------------------------------------------------
# in-cluster and the choice


def service_account(tmp_path: Path, namespace: str = "operators") -> Path:
    sa = tmp_path / "sa"
    sa.mkdir()
    (sa / "token").write_text("sa-token")
    (sa / "ca.crt").write_bytes(CA_PEM)
    (sa / "namespace").write_text(namespace)
    return sa


def test_in_cluster_config_reads_the_service_account(tmp_path: Path) -> None:
    sa = service_account(tmp_path)
    env = {"KUBERNETES_SERVICE_HOST": "10.96.0.1", "KUBERNETES_SERVICE_PORT": "443"}
    config = in_cluster_config(environ=env, service_account_dir=sa)
    assert config.server == "https://10.96.0.1:443"
    assert config.token == "sa-token" and config.token_file == str(sa / "token")
    assert config.ca_data == CA_PEM and config.namespace == "operators"


def test_in_cluster_ipv6_host_is_bracketed_and_pod_namespace_env_wins(tmp_path: Path) -> None:
    sa = service_account(tmp_path)
    env = {
        "KUBERNETES_SERVICE_HOST": "fd00::1",
        "KUBERNETES_SERVICE_PORT": "443",
        "POD_NAMESPACE": "from-env",
    }
    config = in_cluster_config(environ=env, service_account_dir=sa)
    assert config.server == "https://[fd00::1]:443" and config.namespace == "from-env"


def test_in_cluster_outside_a_pod_says_which_variables_are_missing(tmp_path: Path) -> None:
    with pytest.raises(
        ConfigError, match="KUBERNETES_SERVICE_HOST and KUBERNETES_SERVICE_PORT must be defined"
    ):
        in_cluster_config(environ={}, service_account_dir=tmp_path)


def test_load_config_prefers_an_explicit_path_over_kubeconfig_env(tmp_path: Path) -> None:
    explicit = write(
        tmp_path / "explicit",
        kubeconfig(clusters={"c": {"server": "https://explicit"}}, contexts={"dev": {"cluster": "c"}}),
    )
    from_env = write(
        tmp_path / "env",
        kubeconfig(clusters={"c": {"server": "https://env"}}, contexts={"dev": {"cluster": "c"}}),
    )
    assert load_config(explicit, environ={"KUBECONFIG": str(from_env)}).server == "https://explicit"


def test_load_config_explicit_path_must_exist(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="cannot be read"):
        load_config(tmp_path / "nope", environ={})


def test_load_config_falls_back_to_home_kube_config(tmp_path: Path) -> None:
    (tmp_path / ".kube").mkdir()
    write(
        tmp_path / ".kube" / "config",
        kubeconfig(clusters={"c": {"server": "https://home"}}, contexts={"dev": {"cluster": "c"}}),
    )
    assert load_config(environ={"HOME": str(tmp_path)}).server == "https://home"


def test_load_config_uses_in_cluster_when_no_kubeconfig_selects_a_context(tmp_path: Path) -> None:
    sa = service_account(tmp_path)
    env = {"HOME": str(tmp_path), "KUBERNETES_SERVICE_HOST": "10.96.0.1", "KUBERNETES_SERVICE_PORT": "443"}
    assert load_config(environ=env, service_account_dir=sa).server == "https://10.96.0.1:443"
    # A kubeconfig without current-context is "empty" as well.
    write(tmp_path / "empty", kubeconfig(current=None, clusters={"c": {"server": "https://c"}}))
    assert load_config(
        environ={**env, "KUBECONFIG": str(tmp_path / "empty")}, service_account_dir=sa
    ).source.startswith("in-cluster")


def test_load_config_never_hides_a_broken_kubeconfig_behind_in_cluster(tmp_path: Path) -> None:
    sa = service_account(tmp_path)
    broken = write(tmp_path / "broken", kubeconfig(contexts={"dev": {"cluster": "missing"}}))
    env = {
        "KUBECONFIG": str(broken),
        "KUBERNETES_SERVICE_HOST": "10.96.0.1",
        "KUBERNETES_SERVICE_PORT": "443",
    }
    with pytest.raises(ConfigError, match='cluster "missing"'):
        load_config(environ=env, service_account_dir=sa)


def test_load_config_with_nothing_available_lists_what_was_tried(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"no configuration has been provided.*in-cluster"):
        load_config(environ={"HOME": str(tmp_path)}, service_account_dir=tmp_path / "none")
