"""cluster.yaml, checked offline with the Ray cluster launcher's own validation.

What `ray up` does to a config before it touches a machine
(ray.autoscaler._private.commands.create_or_update_cluster -> _bootstrap_config, Ray 2.60):
  1. yaml.safe_load(cluster.yaml)
  2. util.prepare_config: merges the provider's defaults.yaml (a file inside the ray package),
     drops a top-level min_workers, merges setup_commands into head_/worker_setup_commands,
     fills per-type min/max_workers. No provider code, no network.
  3. provider.fillout_available_node_types_resources: for AWS, EC2 DescribeInstanceTypes
     (network + credentials). `ray up` only warns when it fails, and it never overrides resources
     a node type declares; cluster.yaml declares them all. Skipped here.
  4. util.validate_config: jsonschema against ray/autoscaler/ray-schema.json, plus the
     head_node_type and sum-of-min_workers checks. Offline.
  5. provider.bootstrap_config: for AWS, IAM roles, key pairs, subnets, security groups, AMIs
     (network + credentials). Skipped here.
These tests run 1, 2 and 4 (Ray's functions, not copies of them), with sockets and boto3 blocked
so that an accidental cloud call fails the test instead of reaching AWS. `util` is a private
module: ray is pinned (ray[tune]==2.60.0), and a Ray that moves it fails here loudly.
"""

from __future__ import annotations

import copy
import re
import socket
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import yaml
from ray.autoscaler._private.util import prepare_config, validate_config

ROOT = Path(__file__).resolve().parents[2]
CLUSTER_YAML = ROOT / "cluster.yaml"

# A pip install command: `pip install ...`, `pip3 install ...`, `python -m pip install ...`.
PIP_INSTALL = re.compile(r"\bpip3?\s+install\b")


@pytest.fixture(autouse=True)
def offline(monkeypatch: pytest.MonkeyPatch) -> None:
    """No network and no AWS SDK: Ray's offline steps must not need either."""

    def refuse(*args: Any, **kwargs: Any) -> None:
        raise AssertionError("cluster config validation tried to use the network")

    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.setattr(socket.socket, "connect_ex", refuse)
    monkeypatch.setattr(socket, "create_connection", refuse)
    monkeypatch.setattr(socket, "getaddrinfo", refuse)
    for module in ("boto3", "botocore"):
        monkeypatch.setitem(sys.modules, module, None)  # `import boto3` now raises ImportError


def load_raw() -> dict[str, Any]:
    """cluster.yaml as `ray up` reads it."""
    with open(CLUSTER_YAML) as f:
        return yaml.safe_load(f)


def ray_check(config: dict[str, Any]) -> dict[str, Any]:
    """What `ray up` runs on a config before contacting the provider; the prepared config."""
    prepared = prepare_config(copy.deepcopy(config))
    validate_config(prepared)
    return prepared


def pins(text: str) -> dict[str, str]:
    """`name==version` requirements found in a requirements/constraints text."""
    return {
        m.group(1).lower(): m.group(2)
        for m in re.finditer(r"^\s*([A-Za-z0-9_.\-]+)\s*==\s*([^\s;#]+)", text, re.M)
    }


def worker_types(config: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {
        name: t
        for name, t in config["available_node_types"].items()
        if name != config["head_node_type"]
    }


def test_ray_accepts_cluster_yaml() -> None:
    raw = load_raw()
    prepared = ray_check(raw)
    # Our node types replace the provider defaults' (ray.head.default, ...), not merge with them.
    assert set(prepared["available_node_types"]) == set(raw["available_node_types"])
    assert prepared["provider"]["type"] == "aws"
    assert prepared["cluster_name"] == "te-sweep"


def test_worker_limits_sit_inside_each_node_type() -> None:
    raw = load_raw()
    # Ray drops a top-level min_workers for cloud providers (the rule this file follows) ...
    assert "min_workers" not in raw
    dropped = prepare_config(copy.deepcopy({**raw, "min_workers": 2}))
    assert "min_workers" not in dropped
    assert all(
        t["min_workers"] == raw["available_node_types"][n]["min_workers"]
        for n, t in dropped["available_node_types"].items()
    )
    # ... so every node type states its own limits.
    for name, node_type in raw["available_node_types"].items():
        assert isinstance(node_type.get("min_workers"), int), name
        assert isinstance(node_type.get("max_workers"), int), name
        assert 0 <= node_type["min_workers"] <= node_type["max_workers"] <= raw["max_workers"], name
    head = raw["available_node_types"][raw["head_node_type"]]
    assert head["min_workers"] == head["max_workers"] == 0


def test_head_type_is_defined_and_gpu_workers_declare_gpus() -> None:
    raw = load_raw()
    types = raw["available_node_types"]
    assert raw["head_node_type"] in types
    gpu_types = {n: t for n, t in worker_types(raw).items() if t["resources"].get("GPU", 0) > 0}
    assert gpu_types, "no worker node type declares GPUs"
    for name, node_type in gpu_types.items():
        assert node_type["max_workers"] > 0, name
        assert node_type["resources"].get("CPU", 0) > 0, name  # each trial also asks for CPU
    # Every node names its AMI (Ray's fallback is an Ubuntu 18.04 DLAMI with a Python older than
    # te-sweep's >=3.10), the same on all nodes: Ray needs one Python version cluster-wide.
    images = {n: t["node_config"].get("ImageId") for n, t in types.items()}
    assert all(images.values()), images
    assert len(set(images.values())) == 1, images


def test_setup_installs_pinned_torch_first_then_everything_under_constraints() -> None:
    raw = load_raw()
    constraints = pins((ROOT / "constraints.txt").read_text())
    torch_pin = constraints["torch"]
    pyproject = (ROOT / "pyproject.toml").read_text()
    assert f'"torch=={torch_pin}"' in pyproject  # the Makefile's pin, the cluster's pin
    ray_pin = re.search(r'"ray\[[^\]]*\]==([^"]+)"', pyproject).group(1)

    # The repository is synced to the directory the commands install from.
    mounts = {remote.rstrip("/"): local for remote, local in raw["file_mounts"].items()}
    assert mounts.get("~/te-sweep") == "."

    prepared = ray_check(raw)
    # After Ray's merge, these are the exact command lists each kind of node runs.
    for which in ("head_setup_commands", "worker_setup_commands"):
        installs = [c for c in prepared[which] if PIP_INSTALL.search(c)]
        assert installs, which
        first = installs[0].split()
        # First pip command: torch, pinned, alone (nothing else that could pull another torch).
        assert [w for w in first[first.index("install") + 1 :] if not w.startswith("-")] == [
            f"torch=={torch_pin}"
        ], (which, installs[0])
        for cmd in installs[1:]:
            assert re.search(r"(^|\s)-c\s+~/te-sweep/constraints\.txt(\s|$)", cmd), (which, cmd)
            assert "torch" not in cmd.replace("te-sweep", ""), (which, cmd)
            # A ray pinned here must be the project's own pin.
            for version in re.findall(r"\bray(?:\[[^\]]*\])?==([^\s\"']+)", cmd):
                assert version == ray_pin, (which, cmd)
        assert any(re.search(r"-e\s+~/te-sweep(\s|$)", c) for c in installs), which
        # Nothing before the torch install installs Python packages another way.
        before = prepared[which][: prepared[which].index(installs[0])]
        assert not any(re.search(r"\b(conda|uv|pipx)\s+install\b", c) for c in before), which


def test_sync_skips_gitignored_paths() -> None:
    # Without the filter `ray up` would copy the local .venv (~2 GB) to every node.
    raw = load_raw()
    assert ".gitignore" in raw["rsync_filter"]
    ignored = (ROOT / ".gitignore").read_text().split()
    assert ".venv/" in ignored or ".venv" in ignored


def test_start_commands_are_rays_standard_ones() -> None:
    prepared = ray_check(load_raw())
    head, worker = prepared["head_start_ray_commands"], prepared["worker_start_ray_commands"]
    assert head[0] == worker[0] == "ray stop"
    assert re.search(
        r"ray start --head .*--autoscaling-config=~/ray_bootstrap_config\.yaml",
        " ".join(head[1].split()),
    )
    assert "--address=$RAY_HEAD_IP:6379" in worker[1]


def _set(path: tuple[str, ...], value: Any) -> Callable[[dict[str, Any]], None]:
    def mutate(config: dict[str, Any]) -> None:
        node = config
        for key in path[:-1]:
            node = node[key]
        node[path[-1]] = value

    return mutate


def _delete(path: tuple[str, ...]) -> Callable[[dict[str, Any]], None]:
    def mutate(config: dict[str, Any]) -> None:
        node = config
        for key in path[:-1]:
            node = node[key]
        del node[path[-1]]

    return mutate


def _gpu_worker(config: dict[str, Any]) -> str:
    return next(iter(worker_types(config)))


BROKEN = {
    "head_node_type undefined": (
        lambda c: _set(("head_node_type",), "no_such_type")(c),
        ValueError,
        "head_node_type",
    ),
    "unknown top-level key": (
        lambda c: _set(("max_worker",), 4)(c),
        jsonschema.ValidationError,
        "max_worker",
    ),
    "node type without node_config": (
        lambda c: _delete(("available_node_types", _gpu_worker(c), "node_config"))(c),
        jsonschema.ValidationError,
        "node_config",
    ),
    "node type without resources": (
        lambda c: _delete(("available_node_types", _gpu_worker(c), "resources"))(c),
        jsonschema.ValidationError,
        "resources",
    ),
    "fractional GPU on a node": (
        lambda c: _set(("available_node_types", _gpu_worker(c), "resources", "GPU"), 0.5)(c),
        jsonschema.ValidationError,
        "0.5",
    ),
    "unknown key in a node type": (
        lambda c: _set(("available_node_types", _gpu_worker(c), "max_worker"), 4)(c),
        jsonschema.ValidationError,
        "max_worker",
    ),
    "min_workers above the global max_workers": (
        lambda c: _set(
            ("available_node_types", _gpu_worker(c), "min_workers"), c["max_workers"] + 1
        )(c),
        ValueError,
        "max_workers",
    ),
}


@pytest.mark.parametrize("name", list(BROKEN))
def test_ray_rejects_a_broken_copy(name: str) -> None:
    mutate, error, mentions = BROKEN[name]
    config = load_raw()
    mutate(config)
    with pytest.raises(error, match=re.escape(mentions)):
        ray_check(config)
