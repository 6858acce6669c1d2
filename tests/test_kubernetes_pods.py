"""Which containers of a pod are followed, and with which labels: pure functions of the pod object."""

from __future__ import annotations

from typing import Any

from hypothesis import given
from hypothesis import strategies as st

from shipper.config.kubernetes import KubernetesSourceConfig
from shipper.sources.kubernetes.pods import essentials, sanitize_label_name, target_labels, targets_of
from shipper.sources.kubernetes.source import managed_for

IMAGES = ["*redis*", "*valkey*"]
EXCLUDE = ["*redis_exporter*", "*redis-exporter*"]


def pod(**over: Any) -> dict[str, Any]:
    """A pod as ``GET /api/v1/namespaces/cache/pods/redis-0`` returns it once the kubelet runs it."""
    p: dict[str, Any] = {
        "metadata": {"namespace": "cache", "name": "redis-0", "uid": "3f1c0e4a-1b2c-4d5e-8f90-a1b2c3d4e5f6",
                     "labels": {"app.kubernetes.io/name": "redis", "app.kubernetes.io/instance": "sessions"}},
        "spec": {"nodeName": "worker-1", "containers": [
            {"name": "redis", "image": "docker.io/bitnami/redis:7.2.4"},
            {"name": "metrics", "image": "docker.io/oliver006/redis_exporter:v1.58.0"},
            {"name": "sentinel", "image": "docker.io/bitnami/redis-sentinel:7.2.4"},
        ]},
        "status": {"phase": "Running", "podIP": "10.244.1.17", "containerStatuses": [
            {"name": n, "state": {"running": {"startedAt": "2026-12-07T03:00:00Z"}}}
            for n in ("redis", "metrics", "sentinel")
        ]},
    }
    for path, value in over.items():
        section, key = path.split("__")
        p[section][key] = value
    return p


def test_the_redis_and_sentinel_containers_are_followed_and_the_exporter_sidecar_is_not() -> None:
    assert [t.container for t in targets_of(pod(), IMAGES, EXCLUDE)] == ["redis", "sentinel"]


def test_a_pod_without_an_ip_or_whose_container_does_not_run_yet_has_nothing_to_follow() -> None:
    assert targets_of(pod(status__podIP=None), IMAGES, EXCLUDE) == []
    waiting = [{"name": "redis", "state": {"waiting": {"reason": "ContainerCreating"}}}]
    assert targets_of(pod(status__containerStatuses=waiting), IMAGES, EXCLUDE) == []


def test_a_terminating_or_finished_pod_has_nothing_to_follow() -> None:
    assert targets_of(pod(metadata__deletionTimestamp="2026-12-07T03:05:00Z"), IMAGES, EXCLUDE) == []
    assert targets_of(pod(status__phase="Succeeded"), IMAGES, EXCLUDE) == []
    assert targets_of(pod(status__phase="Failed"), IMAGES, EXCLUDE) == []


def test_the_kubelet_log_glob_covers_every_restart_of_the_container() -> None:
    (t, _) = targets_of(pod(), IMAGES, EXCLUDE)
    assert t.log_glob("/var/log/pods") == \
        "/var/log/pods/cache_redis-0_3f1c0e4a-1b2c-4d5e-8f90-a1b2c3d4e5f6/redis/*.log"
    assert t.key == "cache/redis-0/redis"


def test_instance_follows_the_way_redis_exporter_is_scraped() -> None:
    (t, _) = targets_of(pod(), IMAGES, EXCLUDE)
    common = {"copy_pod_labels": [], "static": {}}
    assert target_labels(t, preset="sidecar", port=6379, **common)["instance"] == "10.244.1.17:9121"
    assert target_labels(t, preset="multi-target", port=6380, **common)["instance"] == "redis://10.244.1.17:6380"
    assert target_labels(t, preset="pod", port=6379, **common)["instance"] == "redis-0"


def test_chosen_pod_labels_become_stream_labels_with_prometheus_spelling_and_static_labels_win() -> None:
    (t, _) = targets_of(pod(), IMAGES, EXCLUDE)
    labels = target_labels(t, preset="sidecar", port=6379, copy_pod_labels=["app.kubernetes.io/instance", "absent"],
                           static={"env": "prod", "node": "override"})
    assert labels == {"namespace": "cache", "pod": "redis-0", "container": "redis", "node": "override",
                      "instance": "10.244.1.17:9121", "app_kubernetes_io_instance": "sessions", "env": "prod"}
    assert sanitize_label_name("9lives.io/x") == "_9lives_io_x"


def test_an_ipv6_pod_ip_is_bracketed_in_instance_and_url() -> None:
    (t, _) = targets_of(pod(status__podIP="fd00::17"), IMAGES, EXCLUDE)
    cfg = KubernetesSourceConfig(type="kubernetes", node="worker-1", poll={"port": 6379})
    file_src, redis_src = managed_for(cfg, t)
    assert file_src.labels["instance"] == "[fd00::17]:9121"
    assert redis_src.config["url"] == "redis://[fd00::17]:6379"


def test_the_poller_gets_the_pods_address_and_the_configured_credentials_never_a_url_of_its_own() -> None:
    (t, _) = targets_of(pod(), IMAGES, EXCLUDE)
    cfg = KubernetesSourceConfig(type="kubernetes", node="worker-1", labels={"job": "redis"},
                                 poll={"port": 6379, "username": "shipper", "password_file": "/etc/s/pw"})
    _, redis_src = managed_for(cfg, t)
    assert redis_src.name == "k8s:cache/redis-0/redis:redis"
    assert redis_src.config["type"] == "redis" and redis_src.config["url"] == "redis://10.244.1.17:6379"
    assert redis_src.config["username"] == "shipper" and redis_src.config["password_file"] == "/etc/s/pw"
    assert "password" not in redis_src.config and "port" not in redis_src.config
    assert redis_src.labels["job"] == "redis"


json_values = st.recursive(st.none() | st.booleans() | st.integers() | st.text(max_size=8),
                           lambda c: st.lists(c, max_size=3) | st.dictionaries(st.text(max_size=8), c, max_size=4),
                           max_leaves=20)


@given(json_values)
def test_any_json_value_gives_targets_or_none_never_an_exception(value: Any) -> None:
    assert isinstance(targets_of(value, IMAGES, EXCLUDE), list)


FIELDS = ["namespace", "name", "uid", "labels", "deletionTimestamp", "nodeName", "containers", "image",
          "phase", "podIP", "containerStatuses", "state", "running"]
pod_values = st.recursive(st.none() | st.integers() | st.sampled_from(["redis", "x", "Running", "10.0.0.1"]),
                          lambda c: st.lists(c, max_size=3) | st.dictionaries(st.sampled_from(FIELDS), c, max_size=5),
                          max_leaves=30)


@given(st.dictionaries(st.sampled_from(["metadata", "spec", "status"]), pod_values, max_size=3))
def test_any_pod_shaped_value_gives_targets_or_none_never_an_exception(value: dict[str, Any]) -> None:
    assert isinstance(targets_of(value, IMAGES, EXCLUDE), list)


@given(st.sampled_from(["containers", "containerStatuses"]), json_values)
def test_a_container_list_of_any_shape_is_no_exception(field: str, value: Any) -> None:
    p = pod()
    p["spec" if field == "containers" else "status"][field] = value
    assert isinstance(targets_of(p, IMAGES, EXCLUDE), list)


def test_the_watcher_keeps_only_what_targets_of_reads_and_the_targets_are_the_same() -> None:
    """A pod as the API server sends it (managed fields, env, probes, volumes) is ~30 KiB as a
    dict; the watcher keeps the few fields that decide what is followed (docs/dependencies.md)."""
    full = pod()
    full["metadata"].update(resourceVersion="4711", creationTimestamp="2026-12-07T03:00:00Z",
                            annotations={"checksum/config": "a" * 64},
                            managedFields=[{"manager": "kube-controller-manager", "operation": "Update",
                                            "fieldsV1": {"f:spec": {"f:containers": {}}}}])
    full["spec"]["containers"][0].update(env=[{"name": "REDIS_PASSWORD_FILE", "value": "/run/secrets/redis"}],
                                         livenessProbe={"exec": {"command": ["redis-cli", "ping"]}})
    full["spec"]["volumes"] = [{"name": "data", "emptyDir": {}}]
    full["status"]["conditions"] = [{"type": "Ready", "status": "True"}]
    kept = essentials(full)
    assert targets_of(kept, IMAGES, EXCLUDE) == targets_of(full, IMAGES, EXCLUDE)
    assert kept["metadata"]["resourceVersion"] == "4711"
    assert "managedFields" not in kept["metadata"] and "volumes" not in kept["spec"]
    assert kept["spec"]["containers"][0] == {"name": "redis", "image": "docker.io/bitnami/redis:7.2.4"}
    assert "conditions" not in kept["status"]


@given(st.dictionaries(st.sampled_from(["metadata", "spec", "status"]), pod_values, max_size=3))
def test_what_the_watcher_keeps_of_any_pod_shaped_value_gives_the_same_targets(value: dict[str, Any]) -> None:
    assert targets_of(essentials(value), IMAGES, EXCLUDE) == targets_of(value, IMAGES, EXCLUDE)


@given(json_values)
def test_what_the_watcher_keeps_of_any_json_value_is_no_exception(value: Any) -> None:
    assert targets_of(essentials(value), IMAGES, EXCLUDE) == targets_of(value, IMAGES, EXCLUDE)
