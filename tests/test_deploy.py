"""The deploy files work as written: valid manifests, one state volume per worker, settings that exist.

The Kubernetes manifests are validated against the API's schemas (kubernetes-validate,
strict: an unknown field is an error). The compose file and the manifests may only set
``STREAMCORE_*`` variables that streamcore reads, and must match the image (its user).
"""

from __future__ import annotations

import re
import shlex
from pathlib import Path
from typing import Any

import kubernetes_validate
import pytest
import yaml

from streamcore.runtime.env_check import unknown_variables

ROOT = Path(__file__).parents[1]
COMPOSE = ROOT / "deploy" / "docker-compose.yml"
MANIFESTS = ROOT / "deploy" / "k8s" / "streamcore-worker.yaml"
DOCKERFILE = ROOT / "Dockerfile"


def _resources() -> dict[str, dict[str, Any]]:
    return {doc["kind"]: doc for doc in yaml.safe_load_all(MANIFESTS.read_text())}


@pytest.mark.parametrize("kind", ["Service", "StatefulSet"])
def test_the_manifests_are_valid_kubernetes_objects(kind: str) -> None:
    version = kubernetes_validate.latest_version()
    kubernetes_validate.validate(_resources()[kind], version, strict=True)  # raises with the field at fault


def test_the_statefulset_starts_pods_together_can_write_its_volume_and_is_reachable_before_ready() -> None:
    resources = _resources()
    service, stateful = resources["Service"], resources["StatefulSet"]
    assert service["spec"]["clusterIP"] == "None" and service["spec"]["publishNotReadyAddresses"] is True
    assert stateful["spec"]["serviceName"] == service["metadata"]["name"]
    assert stateful["spec"]["podManagementPolicy"] == "Parallel"
    pod = stateful["spec"]["template"]["spec"]
    uid = int(re.search(r"useradd --uid (\d+)", DOCKERFILE.read_text()).group(1))
    assert pod["securityContext"] == {"runAsUser": uid, "runAsNonRoot": True, "fsGroup": uid}
    (worker,) = pod["containers"]
    assert worker["imagePullPolicy"] == "IfNotPresent"
    assert {m["mountPath"] for m in worker["volumeMounts"]} == {"/var/lib/streamcore"}


def test_compose_gives_each_worker_its_own_state_a_host_port_and_a_producer() -> None:
    compose = yaml.safe_load(COMPOSE.read_text())
    worker = compose["services"]["worker"]
    assert "volumes" not in worker and "volumes" not in compose  # no one volume shared by every replica
    assert 'VOLUME ["/var/lib/streamcore"]' in DOCKERFILE.read_text()  # each container gets its own
    assert worker["ports"] == ["127.0.0.1:8080-8089:8080"]  # a host port per replica, from the host only
    producer = compose["services"]["producer"]
    assert producer["entrypoint"][-1] == "streamcore.apps.fraud.produce_kafka"
    from streamcore.apps.fraud import produce_kafka

    parsed = produce_kafka.build_parser().parse_args(producer["command"])  # the flags exist
    assert parsed.broker == worker["environment"]["STREAMCORE_BROKER"] and parsed.count == 0 and parsed.rate > 0


def test_every_streamcore_variable_the_deploy_files_set_is_read() -> None:
    names = set()
    for path in (COMPOSE, MANIFESTS, DOCKERFILE):
        names |= set(re.findall(r"\b(STREAMCORE_[A-Z0-9_]+)\b", path.read_text()))
    assert "STREAMCORE_HTTP_TOKEN" in names and "STREAMCORE_ADVERTISE" in names
    assert unknown_variables(dict.fromkeys(names, "")) == [], sorted(names)


def test_the_worker_commands_in_the_deploy_files_parse() -> None:
    from streamcore.cli.main import build_parser

    compose = yaml.safe_load(COMPOSE.read_text())
    (worker,) = _resources()["StatefulSet"]["spec"]["template"]["spec"]["containers"]
    cmd = re.search(r"^CMD (\[.*\])$", DOCKERFILE.read_text(), re.M)
    commands = [compose["services"]["worker"]["command"], worker["args"], yaml.safe_load(cmd.group(1))]
    for command in commands:
        args = build_parser().parse_args(command)
        assert args.command == "worker" and (ROOT / args.app).exists(), shlex.join(command)
