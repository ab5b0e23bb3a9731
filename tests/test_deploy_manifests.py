"""The container image and the Kubernetes manifests start the sidecar with
arguments the real CLI accepts, probe the port it listens on, mount the
snapshot so that ConfigMap updates reach it, and keep its port private.

Neither Docker nor a cluster runs here, so the files are read as text and
checked against the CLI's own parser and the engine's own compiler."""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import re
import shlex
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Any

import httpx
import pytest
import yaml

from pdp.cli import build_parser
from pdp.control import PostgresLocation, parse_db_location
from pdp.engine import SnapshotError, compile_snapshot, parse_document
from pdp.server import LIVENESS_SERVICE
from pdp.state import RedisLocation, parse_state_location

REPO = Path(__file__).resolve().parents[1]
MANIFESTS = REPO / "deploy" / "kubernetes"
DOCKERFILE = REPO / "Dockerfile"
DOCKERIGNORE = REPO / ".dockerignore"
EXAMPLE_SNAPSHOT = REPO / "examples" / "policies.yaml"

_POD_TEMPLATE_KINDS = {"Deployment", "StatefulSet", "DaemonSet", "ReplicaSet", "Job"}
_LOOPBACK_HOSTS = {"127.0.0.1", "localhost", "[::1]", "::1"}


# -- reading the manifests ------------------------------------------------------------


def _manifest_documents() -> list[tuple[str, dict[str, Any]]]:
    """Every manifest, of the example and of its variants in folders
    (shared-state/), named by its path under deploy/kubernetes."""
    documents = []
    for path in sorted([*MANIFESTS.rglob("*.yaml"), *MANIFESTS.rglob("*.yml")]):
        for document in yaml.safe_load_all(path.read_text(encoding="utf-8")):
            if document is not None:
                documents.append((str(path.relative_to(MANIFESTS)), document))
    return documents


DOCUMENTS = _manifest_documents()
CONFIGMAPS: dict[str, dict[str, str]] = {
    doc["metadata"]["name"]: doc.get("data", {})
    for _, doc in DOCUMENTS
    if doc["kind"] == "ConfigMap"
}


@dataclass(frozen=True)
class Sidecar:
    """A container that runs `pdp serve`, with the pod it runs in."""

    source: str
    workload: str
    pod: dict[str, Any]
    labels: dict[str, str]
    container: dict[str, Any]
    serve_args: list[str]

    def __str__(self) -> str:
        return f"{self.source}:{self.workload}/{self.container['name']}"


def _serve_args(argv: Sequence[str]) -> list[str] | None:
    """The arguments after `pdp serve` in a command line, or None."""
    for i in range(len(argv) - 1):
        if PurePosixPath(argv[i]).name == "pdp" and argv[i + 1] == "serve":
            return list(argv[i + 2 :])
    return None


def _workloads() -> list[tuple[str, str, dict[str, Any], dict[str, str]]]:
    """(file, kind/name, pod spec, pod labels) of every workload."""
    found = []
    for source, doc in DOCUMENTS:
        if doc["kind"] in _POD_TEMPLATE_KINDS:
            template = doc["spec"]["template"]
        elif doc["kind"] == "Pod":
            template = doc
        else:
            continue
        name = f"{doc['kind']}/{doc['metadata']['name']}"
        found.append((source, name, template["spec"], template["metadata"].get("labels", {})))
    return found


def _sidecars() -> list[Sidecar]:
    sidecars = []
    for source, name, pod, labels in _workloads():
        for container in [*pod.get("initContainers", []), *pod["containers"]]:
            argv = [*container.get("command", []), *container.get("args", [])]
            args = _serve_args(argv)
            if args is not None:
                sidecars.append(Sidecar(source, name, pod, labels, container, args))
    return sidecars


SIDECARS = _sidecars()
by_sidecar = pytest.mark.parametrize("sidecar", SIDECARS, ids=str)


def _parse_serve(args: Sequence[str], where: str) -> argparse.Namespace:
    errors = io.StringIO()
    with contextlib.suppress(SystemExit), contextlib.redirect_stderr(errors):
        return build_parser().parse_args(["serve", *args])
    pytest.fail(f"{where}: the CLI refuses `pdp serve {shlex.join(args)}`:\n{errors.getvalue()}")


def _host_port(listen: str, where: str) -> tuple[str, int]:
    assert not listen.startswith("unix:"), f"{where}: a gRPC probe cannot reach {listen}"
    host, _, port = listen.rpartition(":")
    return host, int(port)


def _mount_holding(container: dict[str, Any], path: str) -> dict[str, Any]:
    """The volume mount whose directory holds `path` (the deepest one)."""
    holders = [
        mount
        for mount in container.get("volumeMounts", [])
        if PurePosixPath(path).is_relative_to(mount["mountPath"])
    ]
    assert holders, f"{container['name']}: no volume is mounted above {path}"
    return max(holders, key=lambda mount: len(mount["mountPath"]))


def _volume(pod: dict[str, Any], name: str) -> dict[str, Any]:
    return next(volume for volume in pod.get("volumes", []) if volume["name"] == name)


# -- the manifests --------------------------------------------------------------------


def _runs_the_control_plane(pod: dict[str, Any]) -> bool:
    return any(
        [*c.get("command", []), *c.get("args", [])][:2] == ["pdp", "control"]
        for c in pod["containers"]
    )


def test_every_workload_runs_one_pdp_sidecar() -> None:
    workloads = _workloads()
    assert workloads, f"no workload in {MANIFESTS}"
    for source, name, pod, _ in workloads:
        if _runs_the_control_plane(pod):
            continue  # checked below
        count = sum(1 for s in SIDECARS if (s.source, s.workload) == (source, name))
        assert count == 1, f"{source}:{name} has {count} containers running `pdp serve`"


@by_sidecar
def test_sidecar_args_are_accepted_by_the_cli(sidecar: Sidecar) -> None:
    _parse_serve(sidecar.serve_args, str(sidecar))


@by_sidecar
def test_probes_and_container_port_point_at_the_listen_port(sidecar: Sidecar) -> None:
    options = _parse_serve(sidecar.serve_args, str(sidecar))
    host, port = _host_port(options.listen, str(sidecar))
    # The kubelet's gRPC probe connects to the pod IP, never to loopback.
    assert host not in _LOOPBACK_HOSTS, f"{sidecar}: probes cannot reach {options.listen}"
    container = sidecar.container
    assert port in [p["containerPort"] for p in container.get("ports", [])], str(sidecar)
    for kind in ("readinessProbe", "livenessProbe", "startupProbe"):
        probe = container.get(kind)
        if probe is None:
            assert kind == "startupProbe", f"{sidecar}: no {kind}"
            continue
        # Startup and readiness come from grpc.health.v1's overall status,
        # NOT_SERVING until the first snapshot is active (and while it is
        # stale); liveness from the service that stays SERVING while the
        # process works, so that staleness never restarts the pod.
        assert "grpc" in probe, f"{sidecar}: {kind} is not a native gRPC probe"
        assert probe["grpc"]["port"] == port, f"{sidecar}: {kind} probes another port"
        wanted = LIVENESS_SERVICE if kind == "livenessProbe" else ""
        assert probe["grpc"].get("service", "") == wanted, f"{sidecar}: {kind} asks another service"


def _follows_a_control_plane(sidecar: Sidecar) -> bool:
    return "://" in _parse_serve(sidecar.serve_args, str(sidecar)).snapshot


@by_sidecar
def test_snapshot_is_read_from_a_configmap_directory_mount(sidecar: Sidecar) -> None:
    if _follows_a_control_plane(sidecar):
        pytest.skip("follows a control plane (checked below)")
    snapshot = _parse_serve(sidecar.serve_args, str(sidecar)).snapshot
    mount = _mount_holding(sidecar.container, snapshot)
    # A subPath mount is a bind mount of one file: ConfigMap updates never reach it.
    assert "subPath" not in mount, f"{sidecar}: {mount['mountPath']} is mounted with subPath"
    assert "subPathExpr" not in mount, f"{sidecar}: {mount['mountPath']} uses subPathExpr"
    source = _volume(sidecar.pod, mount["name"]).get("configMap")
    assert source is not None, f"{sidecar}: {snapshot} is not on a ConfigMap volume"
    relative = str(PurePosixPath(snapshot).relative_to(mount["mountPath"]))
    data = CONFIGMAPS.get(source["name"])
    assert data is not None, f"{sidecar}: ConfigMap {source['name']} is not in {MANIFESTS}"
    keys = {item["path"]: item["key"] for item in source.get("items", [])} or {k: k for k in data}
    assert relative in keys, f"{sidecar}: ConfigMap {source['name']} has no {relative}"
    assert keys[relative] in data, f"{sidecar}: ConfigMap {source['name']} lacks {keys[relative]}"


@by_sidecar
def test_a_control_plane_is_followed_over_verified_tls_with_the_key_from_a_secret(
    sidecar: Sidecar,
) -> None:
    if not _follows_a_control_plane(sidecar):
        pytest.skip("reads a snapshot file (checked above)")
    options = _parse_serve(sidecar.serve_args, str(sidecar))
    for url in options.snapshot.split(","):  # several: replicas of one control plane
        assert url.startswith("https://"), f"{sidecar}: {url} is not https"
    # A key on the command line shows in `ps`; in the environment, in the pod spec.
    assert options.api_key is None, f"{sidecar}: --api-key puts the key in the process list"
    env = {e["name"]: e for e in sidecar.container.get("env", [])}
    assert "value" not in env.get("PDP_API_KEY", {}), f"{sidecar}: the key is in the manifest"
    assert options.max_staleness is not None, f"{sidecar}: without --max-staleness it never fails"
    for path in (options.api_key_file, options.ca_file):
        assert path is not None, f"{sidecar}: needs --api-key-file and --ca-file"
        mount = _mount_holding(sidecar.container, path)
        # A subPath mount never sees a rotated Secret.
        assert "subPath" not in mount, f"{sidecar}: {mount['mountPath']} is mounted with subPath"
        assert mount.get("readOnly") is True, f"{sidecar}: {mount['mountPath']} is writable"
        assert "secret" in _volume(sidecar.pod, mount["name"]), f"{sidecar}: {path} not a Secret"


@by_sidecar
def test_state_database_is_on_a_writable_volume(sidecar: Sidecar) -> None:
    options = _parse_serve(sidecar.serve_args, str(sidecar))
    # With Redis state, the pod's own SQLite file is --local-state.
    state = options.local_state if "://" in options.state else options.state
    mount = _mount_holding(sidecar.container, state)
    assert not mount.get("readOnly", False), f"{sidecar}: {mount['mountPath']} is read-only"
    volume = _volume(sidecar.pod, mount["name"])
    assert "configMap" not in volume, f"{sidecar}: state would sit on a ConfigMap volume"
    assert "secret" not in volume, f"{sidecar}: state would sit on a Secret volume"


@by_sidecar
def test_sidecar_runs_locked_down_with_resource_limits(sidecar: Sidecar) -> None:
    pod_context = sidecar.pod.get("securityContext", {})
    context = sidecar.container.get("securityContext", {})
    assert context.get("runAsNonRoot", pod_context.get("runAsNonRoot")) is True, str(sidecar)
    assert context.get("readOnlyRootFilesystem") is True, str(sidecar)
    assert context.get("allowPrivilegeEscalation") is False, str(sidecar)
    assert "ALL" in context.get("capabilities", {}).get("drop", []), str(sidecar)
    resources = sidecar.container.get("resources", {})
    assert {"cpu", "memory"} <= resources.get("requests", {}).keys(), str(sidecar)
    assert "memory" in resources.get("limits", {}), str(sidecar)


def _rule_admits(rule: dict[str, Any], port: int, port_names: set[str]) -> bool:
    entries = rule.get("ports") or [{}]  # no ports listed: every port
    for entry in entries:
        if entry.get("protocol", "TCP") != "TCP":
            continue
        allowed = entry.get("port")
        if allowed is None or allowed == port or allowed in port_names:
            return True
        if isinstance(allowed, int) and allowed <= port <= entry.get("endPort", allowed):
            return True
    return False


@by_sidecar
def test_no_other_pod_may_reach_the_sidecar_port(sidecar: Sidecar) -> None:
    port = _host_port(_parse_serve(sidecar.serve_args, str(sidecar)).listen, str(sidecar))[1]
    names = {p["name"] for p in sidecar.container["ports"] if p["containerPort"] == port}
    selecting = [
        doc
        for _, doc in DOCUMENTS
        if doc["kind"] == "NetworkPolicy"
        and "Ingress" in doc["spec"].get("policyTypes", ["Ingress"])
        and not doc["spec"]["podSelector"].get("matchExpressions")
        and doc["spec"]["podSelector"].get("matchLabels", {}).items() <= sidecar.labels.items()
    ]
    assert selecting, f"{sidecar}: no NetworkPolicy isolates this pod's ingress"
    for policy in selecting:
        for rule in policy["spec"].get("ingress", []):
            assert not _rule_admits(rule, port, names), (
                f"{sidecar}: NetworkPolicy {policy['metadata']['name']} admits port {port}"
            )


@pytest.mark.parametrize("name", sorted(CONFIGMAPS))
def test_configmap_snapshot_compiles_and_matches_the_example(name: str) -> None:
    for key, text in CONFIGMAPS[name].items():
        errors: tuple[object, ...] = ()
        try:
            compile_snapshot(parse_document(text))
        except SnapshotError as exc:
            errors = tuple(exc.errors)
        assert not errors, f"ConfigMap {name} key {key}:\n" + "\n".join(map(str, errors))
        example = yaml.safe_load(EXAMPLE_SNAPSHOT.read_text(encoding="utf-8"))
        published = yaml.safe_load(text)
        # The sidecars run in strict mode: the snapshot lists caller token
        # hashes (never tokens), which the quick start's example leaves out.
        hashes = [
            token["sha256"]
            for agent in published["agents"]
            for token in agent.pop("callerTokens", [])
        ]
        assert hashes, f"ConfigMap {name} key {key} lists no caller token hash"
        assert all(re.fullmatch(r"[0-9a-f]{64}", h) for h in hashes), hashes
        assert published == example, (
            f"ConfigMap {name} key {key} differs from {EXAMPLE_SNAPSHOT.relative_to(REPO)}"
        )


@by_sidecar
def test_callers_are_bound_to_their_agent_with_a_token_from_a_secret(sidecar: Sidecar) -> None:
    options = _parse_serve(sidecar.serve_args, str(sidecar))
    assert options.require_caller_token, f"{sidecar}: not in strict mode"
    agents = [
        c
        for c in [*sidecar.pod.get("initContainers", []), *sidecar.pod["containers"]]
        if c is not sidecar.container
    ]
    assert agents, f"{sidecar}: no agent container next to the sidecar"
    for agent in agents:
        env = {e["name"]: e for e in agent.get("env", [])}
        token = env.get("PDP_CALLER_TOKEN")
        assert token is not None, f"{sidecar}: {agent['name']} sends no caller token"
        assert "value" not in token, f"{sidecar}: the caller token is in the manifest"
        assert "secretKeyRef" in token.get("valueFrom", {}), f"{sidecar}: token not a Secret"


@pytest.mark.parametrize("folder", ["", "shared-state"])
def test_kustomization_applies_each_object_once_and_misses_none(folder: str) -> None:
    directory = MANIFESTS / folder
    kustomization = yaml.safe_load((directory / "kustomization.yaml").read_text(encoding="utf-8"))
    applied: set[tuple[str, str]] = set()
    for resource in kustomization["resources"]:
        for document in yaml.safe_load_all((directory / resource).read_text(encoding="utf-8")):
            key = (document["kind"], document["metadata"]["name"])
            assert key not in applied, f"{resource}: {key} is applied twice"
            applied.add(key)
    # Files left out (the native-sidecar variant) replace an applied object.
    for source, document in DOCUMENTS:
        if str(PurePosixPath(source).parent).removeprefix(".") != folder:
            continue
        if document["kind"] != "Kustomization":
            key = (document["kind"], document["metadata"]["name"])
            assert key in applied, f"{source}: {key} is not in kustomization.yaml"


# -- the shared-state variant: Redis state, the control plane on PostgreSQL ------------


def _control_planes() -> list[tuple[str, dict[str, Any], dict[str, Any], list[str]]]:
    """(file, workload, container, arguments after `pdp control`) of each control plane."""
    found = []
    for source, doc in DOCUMENTS:
        if doc["kind"] not in _POD_TEMPLATE_KINDS:
            continue
        for container in doc["spec"]["template"]["spec"]["containers"]:
            argv = [*container.get("command", []), *container.get("args", [])]
            if argv[:2] == ["pdp", "control"]:
                found.append((source, doc, container, argv[2:]))
    return found


def _parse(command: str, args: Sequence[str], where: str) -> argparse.Namespace:
    errors = io.StringIO()
    with contextlib.suppress(SystemExit), contextlib.redirect_stderr(errors):
        return build_parser().parse_args([command, *args])
    pytest.fail(
        f"{where}: the CLI refuses `pdp {command} {shlex.join(args)}`:\n{errors.getvalue()}"
    )


def test_the_shared_control_plane_runs_replicas_on_postgresql() -> None:
    planes = [p for p in _control_planes() if p[0].startswith("shared-state/")]
    assert len(planes) == 1, "shared-state/ runs one control plane workload"
    source, workload, container, args = planes[0]
    options = _parse("control", args, source)
    location = parse_db_location(options.db)
    assert isinstance(location, PostgresLocation), f"{source}: --db is not postgresql://"
    assert location.sslmode == "require", f"{source}: the database is reached without TLS"
    assert workload["spec"]["replicas"] >= 2, f"{source}: one replica cannot fail over"
    env = {e["name"]: e for e in container.get("env", [])}
    assert "secretKeyRef" in env["PDP_DB_PASSWORD"]["valueFrom"], (
        f"{source}: password not from a Secret"
    )
    host, port = _host_port(options.listen, source)
    assert host not in _LOOPBACK_HOSTS
    probe = container["readinessProbe"]["httpGet"]
    assert (probe["path"], probe["port"], probe["scheme"]) == ("/healthz", port, "HTTPS")
    for path in (options.tls_cert, options.tls_key):
        mount = _mount_holding(container, path)
        assert mount.get("readOnly") is True
        assert "secret" in _volume(workload["spec"]["template"]["spec"], mount["name"])


def test_shared_state_sidecars_use_redis_and_follow_every_replica() -> None:
    planes = [p for p in _control_planes() if p[0].startswith("shared-state/")]
    _, workload, _, _ = planes[0]
    service = workload["spec"]["serviceName"]
    namespace = workload["metadata"]["namespace"]
    names = [f"{workload['metadata']['name']}-{i}" for i in range(workload["spec"]["replicas"])]
    sidecars = [s for s in SIDECARS if s.source.startswith("shared-state/")]
    assert sidecars, "shared-state/ has no sidecar"
    for sidecar in sidecars:
        options = _parse_serve(sidecar.serve_args, str(sidecar))
        location = parse_state_location(options.state)
        assert isinstance(location, RedisLocation), f"{sidecar}: --state is not Redis"
        mount = _mount_holding(sidecar.container, options.state_password_file)
        assert "secret" in _volume(sidecar.pod, mount["name"]), f"{sidecar}: password not a Secret"
        hosts = [httpx.URL(url).host for url in options.snapshot.split(",")]
        # The StatefulSet's pods by their stable names: a failover is one request away.
        assert hosts == [f"{n}.{service}.{namespace}.svc" for n in names], str(sidecar)


# -- the Dockerfile -------------------------------------------------------------------


def _dockerfile_stages() -> list[list[tuple[str, str]]]:
    """Instructions (KEYWORD, arguments) per build stage, continuations joined."""
    stages: list[list[tuple[str, str]]] = []
    pending = ""
    for raw in DOCKERFILE.read_text(encoding="utf-8").splitlines():
        line = raw.strip()
        if line.startswith("#") or (not line and not pending):
            continue  # comments (and parser directives) even inside a continuation
        if line.endswith("\\"):
            pending += line[:-1] + " "
            continue
        keyword, _, arguments = (pending + line).strip().partition(" ")
        pending = ""
        if keyword.upper() == "FROM":
            stages.append([])
        stages[-1].append((keyword.upper(), arguments.strip()))
    return stages


STAGES = _dockerfile_stages()
FINAL = STAGES[-1]


def _last(keyword: str) -> str:
    values = [arguments for k, arguments in FINAL if k == keyword]
    assert values, f"the final stage of the Dockerfile has no {keyword}"
    return values[-1]


def _exec_form(keyword: str) -> list[str]:
    value = json.loads(_last(keyword))
    assert isinstance(value, list), f"{keyword} must be in exec (JSON array) form"
    return [str(item) for item in value]


def test_image_is_glibc_based_with_one_base_for_all_stages() -> None:
    froms = [[w for w in stage[0][1].split() if not w.startswith("--")] for stage in STAGES]
    aliases = {words[-1].lower() for words in froms if len(words) == 3}  # FROM image AS name
    bases = {words[0] for words in froms} - aliases
    # cel-expr-python has glibc wheels only; and the venv copied from the
    # builder links to the base image's interpreter, so both must match.
    assert len(bases) == 1, f"stages use different base images: {sorted(bases)}"
    assert "alpine" not in next(iter(bases)).lower()


def test_image_runs_as_a_fixed_non_root_uid() -> None:
    user = _last("USER").split(":")[0]
    # Kubernetes' runAsNonRoot can only verify a numeric user.
    assert user.isdigit(), f"USER {user} is not numeric"
    assert int(user) != 0, "USER is root"


def test_image_default_command_parses_and_uses_what_the_image_holds() -> None:
    argv = [*_exec_form("ENTRYPOINT"), *_exec_form("CMD")]
    args = _serve_args(argv)
    assert args is not None, f"the image does not run `pdp serve`: {argv}"
    options = _parse_serve(args, "Dockerfile ENTRYPOINT + CMD")
    host, port = _host_port(options.listen, "Dockerfile")
    assert host not in _LOOPBACK_HOSTS, f"a published port cannot reach {options.listen}"
    assert str(port) in _last("EXPOSE").split(), f"EXPOSE does not list {port}"
    copied = [arguments.split()[-1] for k, arguments in FINAL if k == "COPY"]
    assert options.snapshot in copied, f"the image holds no default snapshot at {options.snapshot}"
    volumes = json.loads(_last("VOLUME"))
    assert str(PurePosixPath(options.state).parent) in volumes, (
        f"{options.state} is not on a VOLUME"
    )


def _ignore_rules() -> list[tuple[bool, re.Pattern[str]]]:
    """.dockerignore as (is_exception, regex): `*` and `?` stop at `/`, `**` does not."""
    rules = []
    for raw in DOCKERIGNORE.read_text(encoding="utf-8").splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        exception = line.startswith("!")
        glob = str(PurePosixPath(line.removeprefix("!").strip())).lstrip("/")
        regex = re.sub(
            r"\*\*/|\*\*|\*|\?|\[[^]]*]|[^*?[]+",
            lambda m: {"**/": "(?:.*/)?", "**": ".*", "*": "[^/]*", "?": "[^/]"}.get(
                m[0], m[0] if m[0].startswith("[") else re.escape(m[0])
            ),
            glob,
        )
        rules.append((exception, re.compile(regex)))
    return rules


def _ignored(relative: str, rules: list[tuple[bool, re.Pattern[str]]]) -> bool:
    """Docker's rule: the last pattern matching the path or a parent of it wins."""
    parts = PurePosixPath(relative).parts
    prefixes = ["/".join(parts[: i + 1]) for i in range(len(parts))]
    ignored = False
    for exception, regex in rules:
        if any(regex.fullmatch(prefix) for prefix in prefixes):
            ignored = not exception
    return ignored


def test_build_context_holds_every_file_the_dockerfile_copies() -> None:
    rules = _ignore_rules()
    sources: list[str] = []
    for stage in STAGES:
        for keyword, arguments in stage:
            words = arguments.split()
            if keyword != "COPY" or any(w.startswith("--from") for w in words):
                continue
            sources.extend(w for w in words[:-1] if not w.startswith("--"))
    assert sources, "the Dockerfile copies nothing from the build context"
    for source in sources:
        path = REPO / source
        assert path.exists(), f"COPY {source}: no such file in the repository"
        files = [path] if path.is_file() else [p for p in path.rglob("*") if p.is_file()]
        for file in files:
            relative = file.relative_to(REPO).as_posix()
            if "__pycache__" not in relative:
                assert not _ignored(relative, rules), f".dockerignore drops {relative}"
