"""Labels a container log's path gives (shipper/sources/files/layout.py)."""

from __future__ import annotations

from pathlib import Path

import orjson

from shipper.sources.files.layout import labels_from_path

CID = "4f2a9c0d1e8b7a6f5c4d3e2b1a0f9e8d7c6b5a4f3e2d1c0b9a8f7e6d5c4b3a2f"


def test_the_kubelet_layout_gives_namespace_pod_and_container_also_for_rotated_files() -> None:
    base = "/var/log/pods/cache_redis-0_0f1e2d3c-aaaa-bbbb-cccc-111122223333/redis"
    want = {"namespace": "cache", "pod": "redis-0", "container": "redis"}
    assert labels_from_path(f"{base}/0.log") == want
    assert labels_from_path(f"{base}/1.log.20261207-030000") == want
    assert labels_from_path(f"{base}/1.log.20261207-030000.gz") == want


def test_docker_json_file_gives_the_short_id_and_the_name_from_config_v2(tmp_path: Path) -> None:
    d = tmp_path / "containers" / CID
    d.mkdir(parents=True)
    log = str(d / f"{CID}-json.log")
    assert labels_from_path(log) == {"container_id": CID[:12]}, "no config.v2.json yet: the id alone"
    (d / "config.v2.json").write_bytes(orjson.dumps({"Name": "/redis-cache", "ID": CID}))
    assert labels_from_path(log) == {"container_id": CID[:12], "container": "redis-cache"}
    assert labels_from_path(log + ".1") == {"container_id": CID[:12], "container": "redis-cache"}


def test_other_paths_give_no_labels() -> None:
    assert labels_from_path("/var/log/redis/redis-server.log") == {}
    assert labels_from_path("/var/log/pods/not-a-pod-dir/redis/0.log") == {}
