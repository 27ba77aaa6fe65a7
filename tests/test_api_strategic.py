"""Strategic merge patch: the shapes kubectl really sends, upstream's rules, and upstream itself.

The last group of tests runs the same patches through ``kubectl patch --local``, which applies
them with upstream's Go implementation and never contacts a server, and requires identical results.
"""

from __future__ import annotations

import copy
import json
import os
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from kubevisor.api import BadRequest, GroupVersionKind, UnsupportedMediaType
from kubevisor.api._strategic import strategic_merge, strategic_merge_patch

DEPLOYMENT = GroupVersionKind("apps", "v1", "Deployment")
POD = GroupVersionKind("", "v1", "Pod")
CONFIG_MAP = GroupVersionKind("", "v1", "ConfigMap")


def deployment(**spec: Any) -> dict[str, Any]:
    base: dict[str, Any] = {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": "web", "namespace": "default", "labels": {"app": "web", "tier": "front"}},
        "spec": {
            "replicas": 2,
            "selector": {"matchLabels": {"app": "web"}},
            "strategy": {"type": "RollingUpdate", "rollingUpdate": {"maxSurge": 1, "maxUnavailable": 0}},
            "template": {
                "metadata": {"labels": {"app": "web"}},
                "spec": {
                    "containers": [
                        {
                            "name": "app",
                            "image": "app:1",
                            "env": [{"name": "A", "value": "1"}, {"name": "B", "value": "2"}],
                        },
                        {"name": "sidecar", "image": "proxy:1"},
                    ]
                },
            },
        },
    }
    base["spec"].update(spec)
    return base


def containers(obj: dict[str, Any]) -> list[dict[str, Any]]:
    result: list[dict[str, Any]] = obj["spec"]["template"]["spec"]["containers"]
    return result


# -- what kubectl apply and kubectl patch send ------------------------------------------------------


def test_containers_merge_by_name_in_the_order_set_element_order_gives() -> None:
    patch = {
        "spec": {
            "template": {
                "spec": {
                    "$setElementOrder/containers": [{"name": "sidecar"}, {"name": "app"}, {"name": "cache"}],
                    "containers": [
                        {"name": "app", "image": "app:2"},
                        {"name": "cache", "image": "redis:7"},
                    ],
                }
            }
        }
    }
    result = strategic_merge_patch(deployment(), patch, DEPLOYMENT)
    assert containers(result) == [
        {"name": "sidecar", "image": "proxy:1"},
        {"name": "app", "image": "app:2", "env": [{"name": "A", "value": "1"}, {"name": "B", "value": "2"}]},
        {"name": "cache", "image": "redis:7"},
    ]


def test_retain_keys_on_the_deployment_strategy_clears_rolling_update() -> None:
    patch = {"spec": {"strategy": {"$retainKeys": ["type"], "type": "Recreate", "rollingUpdate": None}}}
    result = strategic_merge_patch(deployment(), patch, DEPLOYMENT)
    assert result["spec"]["strategy"] == {"type": "Recreate"}


def test_retain_keys_swaps_a_pod_volume_source() -> None:
    pod = {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": "p"},
        "spec": {
            "containers": [{"name": "c", "image": "i"}],
            "volumes": [{"name": "data", "emptyDir": {}}, {"name": "other", "emptyDir": {}}],
        },
    }
    patch = {
        "spec": {
            "$setElementOrder/volumes": [{"name": "data"}, {"name": "other"}],
            "volumes": [{"$retainKeys": ["configMap", "name"], "name": "data", "configMap": {"name": "cfg"}}],
        }
    }
    result = strategic_merge_patch(pod, patch, POD)
    assert result["spec"]["volumes"] == [
        {"name": "data", "configMap": {"name": "cfg"}},
        {"name": "other", "emptyDir": {}},
    ]


def test_patch_delete_removes_an_env_var_by_name() -> None:
    patch = {
        "spec": {
            "template": {
                "spec": {
                    "$setElementOrder/containers": [{"name": "app"}, {"name": "sidecar"}],
                    "containers": [
                        {
                            "name": "app",
                            "$setElementOrder/env": [{"name": "A"}],
                            "env": [{"$patch": "delete", "name": "B"}],
                        }
                    ],
                }
            }
        }
    }
    result = strategic_merge_patch(deployment(), patch, DEPLOYMENT)
    assert containers(result)[0]["env"] == [{"name": "A", "value": "1"}]


def test_null_removes_a_label_and_keeps_the_others() -> None:
    result = strategic_merge_patch(
        deployment(), {"metadata": {"labels": {"tier": None, "new": "x"}}}, DEPLOYMENT
    )
    assert result["metadata"]["labels"] == {"app": "web", "new": "x"}


def test_finalizers_merge_as_a_set_and_delete_from_primitive_list_removes_one() -> None:
    obj = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "c", "finalizers": ["a/x", "b/y"]}}
    added = strategic_merge_patch(obj, {"metadata": {"finalizers": ["b/y", "c/z"]}}, CONFIG_MAP)
    assert sorted(added["metadata"]["finalizers"]) == ["a/x", "b/y", "c/z"]
    removed = strategic_merge_patch(
        obj, {"metadata": {"$deleteFromPrimitiveList/finalizers": ["a/x"]}}, CONFIG_MAP
    )
    assert removed["metadata"]["finalizers"] == ["b/y"]


def test_a_list_without_merge_strategy_is_replaced() -> None:
    obj = {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p"}, "spec": {"containers": []}}
    obj["spec"]["tolerations"] = [{"key": "a", "operator": "Exists"}]
    result = strategic_merge_patch(obj, {"spec": {"tolerations": [{"key": "b", "operator": "Exists"}]}}, POD)
    assert result["spec"]["tolerations"] == [{"key": "b", "operator": "Exists"}]


def test_a_new_item_without_set_element_order_goes_first_as_upstream_places_it() -> None:
    patch = {"spec": {"template": {"spec": {"containers": [{"name": "new", "image": "n"}]}}}}
    result = strategic_merge_patch(deployment(), patch, DEPLOYMENT)
    assert [c["name"] for c in containers(result)] == ["new", "app", "sidecar"]


def test_patch_replace_as_a_list_item_replaces_the_whole_merging_list() -> None:
    patch = {
        "spec": {
            "template": {"spec": {"containers": [{"$patch": "replace"}, {"name": "only", "image": "o"}]}}
        }
    }
    result = strategic_merge_patch(deployment(), patch, DEPLOYMENT)
    assert containers(result) == [{"name": "only", "image": "o"}]


def test_patch_replace_on_a_map_replaces_it() -> None:
    result = strategic_merge_patch(
        deployment(), {"metadata": {"labels": {"$patch": "replace", "x": "y"}}}, DEPLOYMENT
    )
    assert result["metadata"]["labels"] == {"x": "y"}


def test_patch_delete_on_a_map_empties_it() -> None:
    result = strategic_merge_patch(deployment(), {"metadata": {"labels": {"$patch": "delete"}}}, DEPLOYMENT)
    assert result["metadata"]["labels"] == {}


def test_a_new_map_from_the_patch_loses_its_nulls() -> None:
    result = strategic_merge_patch(
        deployment(), {"metadata": {"annotations": {"a": "1", "b": None}}}, DEPLOYMENT
    )
    assert result["metadata"]["annotations"] == {"a": "1"}


def test_neither_input_is_modified_and_the_result_shares_nothing_with_them() -> None:
    original = deployment()
    patch = {"spec": {"template": {"spec": {"containers": [{"name": "new", "image": "n", "args": ["a"]}]}}}}
    original_before, patch_before = copy.deepcopy(original), copy.deepcopy(patch)
    result = strategic_merge_patch(original, patch, DEPLOYMENT)
    assert original == original_before
    assert patch == patch_before
    containers(result)[0]["args"].append("b")
    result["metadata"]["labels"]["changed"] = "yes"
    assert original == original_before
    assert patch == patch_before


def test_a_custom_kind_is_refused_with_upstreams_415() -> None:
    with pytest.raises(UnsupportedMediaType) as caught:
        strategic_merge_patch({}, {}, GroupVersionKind("example.com", "v1", "Todo"))
    assert caught.value.code == 415
    assert "application/merge-patch+json" in caught.value.message


def test_the_schema_level_function_works_with_an_openapi_v3_style_schema() -> None:
    definitions = {
        "Item": {
            "type": "object",
            "properties": {
                "list": {
                    "type": "array",
                    "items": {"type": "object"},
                    "x-kubernetes-patch-strategy": "merge",
                    "x-kubernetes-patch-merge-key": "id",
                }
            },
        }
    }
    schema = {"type": "object", "properties": {"item": {"allOf": [{"$ref": "#/components/schemas/Item"}]}}}
    original = {"item": {"list": [{"id": 1, "v": "a"}, {"id": 2, "v": "b"}]}}
    result = strategic_merge(
        original,
        {"item": {"$setElementOrder/list": [{"id": 1}, {"id": 2}], "list": [{"id": 2, "v": "c"}]}},
        schema,
        definitions,
    )
    assert result == {"item": {"list": [{"id": 1, "v": "a"}, {"id": 2, "v": "c"}]}}


# -- malformed patches -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("patch", "message"),
    [
        ({"metadata": {"labels": {"$patch": "bogus"}}}, "unknown patch type"),
        ({"metadata": {"labels": {"$patch": "merge"}}}, "unknown patch type"),
        (
            {"spec": {"template": {"spec": {"containers": [{"image": "x"}]}}}},
            "does not contain declared merge key: name",
        ),
        ({"spec": {"template": {"spec": {"containers": [{"$patch": "merge"}]}}}}, "merging lists cannot yet"),
        ({"spec": {"strategy": {"$retainKeys": "type"}}}, "retainKeys"),
        ({"spec": {"strategy": {"$retainKeys": ["type"], "rollingUpdate": {}}}}, "retainKeys"),
        ({"metadata": {"$deleteFromPrimitiveList/finalizers": "a"}}, "primitive list"),
        ({"metadata": {"$setElementOrder/finalizers": "a"}}, "setElementOrder"),
        ({"metadata": {"$setElementOrder": []}}, "invalid patch directive"),
        ({"metadata": {"finalizers": [["a"]]}}, "lists of lists"),
        ({"metadata": {"finalizers": [1]}}, "not identical"),
        (
            {
                "spec": {
                    "template": {
                        "spec": {
                            "$setElementOrder/containers": [{"name": "app"}, {"name": "sidecar"}],
                            "containers": [{"name": "sidecar"}, {"name": "app"}],
                        }
                    }
                }
            },
            "doesn't match",
        ),
    ],
)
def test_a_malformed_patch_is_a_bad_request_naming_the_problem(patch: dict[str, Any], message: str) -> None:
    obj = deployment()
    obj["metadata"]["finalizers"] = ["a/b"]
    with pytest.raises(BadRequest) as caught:
        strategic_merge_patch(obj, patch, DEPLOYMENT)
    assert caught.value.code == 400
    assert message in caught.value.message


def test_a_patch_that_is_not_an_object_is_a_bad_request() -> None:
    with pytest.raises(BadRequest):
        strategic_merge_patch(deployment(), [], DEPLOYMENT)  # type: ignore[arg-type]


# -- properties ------------------------------------------------------------------------------------

keys = st.sampled_from(["a", "b", "c", "labels", "spec", "metadata", "x-y"])
scalars = st.none() | st.booleans() | st.integers(-5, 5) | st.text(max_size=3)
json_values = st.recursive(
    scalars,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(keys, inner, max_size=3),
    max_leaves=12,
)
objects = st.dictionaries(keys, json_values, max_size=5)
map_patches = st.recursive(
    st.dictionaries(keys, st.none() | st.booleans() | st.integers(-5, 5) | st.text(max_size=3), max_size=3),
    lambda inner: st.dictionaries(keys, inner | scalars, max_size=3),
    max_leaves=12,
)


def json_merge_patch(target: Any, patch: Any) -> Any:
    """RFC 7386, section 2, as the reference for patches made only of maps and scalars."""
    if not isinstance(patch, dict):
        return patch
    result = dict(target) if isinstance(target, dict) else {}
    for key, value in patch.items():
        if value is None:
            result.pop(key, None)
        else:
            result[key] = json_merge_patch(result.get(key), value)
    return result


@settings(max_examples=200)
@given(objects)
def test_patching_with_an_empty_patch_is_the_identity(obj: dict[str, Any]) -> None:
    assert strategic_merge(obj, {}, None, {}) == obj
    assert strategic_merge_patch(obj, {}, DEPLOYMENT) == obj


@settings(max_examples=300)
@given(objects, map_patches)
def test_a_patch_of_plain_maps_behaves_as_a_json_merge_patch(
    obj: dict[str, Any], patch: dict[str, Any]
) -> None:
    assert strategic_merge(obj, patch, None, {}) == json_merge_patch(obj, patch)
    assert strategic_merge_patch(obj, patch, CONFIG_MAP) == json_merge_patch(obj, patch)


# -- upstream's implementation as the oracle -------------------------------------------------------


def kubectl_binaries() -> list[str]:
    found = shutil.which("kubectl")
    if found is None:
        return []
    directory = Path(os.path.realpath(found)).parent
    versioned = sorted(directory.glob("kubectl.1.*"), key=lambda p: int(p.name.rsplit(".", 1)[1]))
    # Only the newest: kubectl embeds the apimachinery of its own release, and the server emulates
    # v1.33 (older releases kept e.g. a `$patch: delete` map verbatim where the key was absent).
    return [str(versioned[-1])] if versioned else [found]


ORACLE_CASES: list[tuple[str, dict[str, Any]]] = [
    (
        "add a container without order",
        {"spec": {"template": {"spec": {"containers": [{"name": "z", "image": "z"}]}}}},
    ),
    (
        "reorder containers",
        {
            "spec": {
                "template": {"spec": {"$setElementOrder/containers": [{"name": "sidecar"}, {"name": "app"}]}}
            }
        },
    ),
    (
        "change one container and add one in order",
        {
            "spec": {
                "template": {
                    "spec": {
                        "$setElementOrder/containers": [
                            {"name": "app"},
                            {"name": "new"},
                            {"name": "sidecar"},
                        ],
                        "containers": [{"name": "app", "image": "app:2"}, {"name": "new", "image": "n"}],
                    }
                }
            }
        },
    ),
    (
        "patch order differs from server order",
        {
            "spec": {
                "template": {
                    "spec": {
                        "containers": [{"name": "sidecar", "image": "s2"}, {"name": "app", "image": "a2"}]
                    }
                }
            }
        },
    ),
    (
        "delete a container and an env var",
        {
            "spec": {
                "template": {
                    "spec": {
                        "containers": [
                            {"name": "sidecar", "$patch": "delete"},
                            {
                                "name": "app",
                                "env": [{"name": "A", "$patch": "delete"}, {"name": "C", "value": "3"}],
                            },
                        ]
                    }
                }
            }
        },
    ),
    (
        "retain keys",
        {"spec": {"strategy": {"$retainKeys": ["type"], "type": "Recreate", "rollingUpdate": None}}},
    ),
    (
        "replace list",
        {
            "spec": {
                "template": {"spec": {"containers": [{"$patch": "replace"}, {"name": "o", "image": "o"}]}}
            }
        },
    ),
    ("replace map", {"metadata": {"labels": {"$patch": "replace", "only": "one"}}}),
    ("delete map", {"spec": {"selector": {"$patch": "delete"}}}),
    ("delete absent map", {"metadata": {"annotations": {"$patch": "delete"}}}),
    (
        "null label and new annotation",
        {"metadata": {"labels": {"tier": None}, "annotations": {"a": "b", "c": None}}},
    ),
    ("finalizers union", {"metadata": {"finalizers": ["c/z", "a/x"]}}),
    (
        "finalizers delete and add",
        {"metadata": {"finalizers": ["d/w"], "$deleteFromPrimitiveList/finalizers": ["a/x"]}},
    ),
    (
        "finalizers ordered",
        {"metadata": {"$setElementOrder/finalizers": ["b/y", "d/w", "a/x"], "finalizers": ["d/w"]}},
    ),
    (
        "atomic list replaced",
        {"spec": {"template": {"spec": {"containers": [{"name": "app", "args": ["x"]}]}}}},
    ),
    ("type change", {"spec": {"replicas": {"weird": True}}}),
    ("unknown field merges", {"spec": {"unknownField": {"a": 1}}}),
    ("missing merge key", {"spec": {"template": {"spec": {"containers": [{"image": "x"}]}}}}),
    ("bad directive", {"metadata": {"labels": {"$patch": "merge"}}}),
]


@pytest.mark.kubectl
@pytest.mark.parametrize(("name", "patch"), ORACLE_CASES, ids=[name for name, _ in ORACLE_CASES])
def test_the_result_equals_kubectl_patch_local(name: str, patch: dict[str, Any], tmp_path: Path) -> None:
    binaries = kubectl_binaries()
    if not binaries:
        pytest.skip("kubectl is not installed: the upstream oracle is unavailable")
    original = deployment()
    original["metadata"]["finalizers"] = ["a/x", "b/y"]
    source = tmp_path / "object.json"
    source.write_text(json.dumps(original))
    (tmp_path / "kubeconfig").write_text("")
    env = {
        "PATH": os.environ.get("PATH", ""),
        "HOME": str(tmp_path),
        "KUBECONFIG": str(tmp_path / "kubeconfig"),
    }
    for binary in binaries:
        run = subprocess.run(
            [
                binary,
                "patch",
                "--local",
                "-f",
                str(source),
                "--type=strategic",
                "-o",
                "json",
                "-p",
                json.dumps(patch),
            ],
            capture_output=True,
            text=True,
            env=env,
            timeout=60,
            check=False,
        )
        if run.returncode != 0:
            with pytest.raises(BadRequest):
                strategic_merge_patch(original, patch, DEPLOYMENT)
            continue
        assert strategic_merge_patch(original, patch, DEPLOYMENT) == json.loads(run.stdout), run.stderr
