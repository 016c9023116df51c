"""The deployment files, checked without Docker: docker-compose.yml, deploy/.env.example,
deploy/Dockerfile, .dockerignore and deploy/k8s. One test runs the compose file's own store
command and bucket one-shot as local processes against the `weed` binary."""

import fnmatch
import importlib.util
import json
import re
import shutil
import subprocess
import sys
import time
import tomllib
import urllib.request
from collections import Counter
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import kubernetes_validate
import pytest
import yaml
from minio import Minio
from minio.error import S3Error

from arrayq.storage.settings import Settings
from arrayq.worker.celery_app import QUEUES
from tests.support.compose import (
    COMPOSE_FILE,
    REPO_ROOT,
    compose_command,
    compose_environment,
    compose_service,
    interpolate,
    load_compose,
    referenced_variables,
)
from tests.support.seaweed import PORT_FLAGS, free_ports, weed_binary

DEPLOY = REPO_ROOT / "deploy"
SETTING_NAMES = {f"ARRAYQ_{name.upper()}" for name in Settings.model_fields}
# Settings whose compose value differs from the built-in default on purpose.
DEPLOYMENT_VALUES = {"redis_url", "storage_url", "s3_public_endpoint"}
APP_SERVICES = ("createbucket", "api", "worker")
STORE = "seaweedfs"
# DESIGN's default of ARRAYQ_WORKER_SHUTDOWN_SECONDS, used until that setting exists.
WORKER_SHUTDOWN_SECONDS = 50.0


# --- docker-compose.yml -------------------------------------------------------------------------


def test_compose_file_follows_the_compose_specification() -> None:
    venv_bin = str(Path(sys.executable).parent)
    tool = shutil.which("check-jsonschema", path=venv_bin) or shutil.which("check-jsonschema")
    if tool is None:
        pytest.skip("check-jsonschema is not installed (pip install check-jsonschema)")
    checked = subprocess.run(
        [tool, "--builtin-schema", "vendor.compose-spec", str(COMPOSE_FILE)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert checked.returncode == 0, checked.stdout + checked.stderr


def test_every_arrayq_name_in_the_compose_file_is_a_setting() -> None:
    names = set(re.findall(r"\bARRAYQ_[A-Z0-9_]+", COMPOSE_FILE.read_text()))
    assert "ARRAYQ_REDIS_URL" in names
    assert names - SETTING_NAMES == set()


@pytest.mark.parametrize("name", APP_SERVICES)
def test_every_setting_reaches_the_arrayq_containers(name: str) -> None:
    assert set(compose_environment(name)) == SETTING_NAMES


def test_compose_defaults_are_the_built_in_defaults() -> None:
    deployed = _settings_from(compose_environment("api")).model_dump(exclude=DEPLOYMENT_VALUES)
    built_in = Settings.model_construct().model_dump(exclude=DEPLOYMENT_VALUES)
    assert deployed == built_in


def test_arrayq_runs_on_the_compose_redis_and_store() -> None:
    settings = _settings_from(compose_environment("api"))
    store_env = compose_environment(STORE)
    storage = urlsplit(settings.storage_url)
    assert urlsplit(settings.redis_url).hostname == "redis"
    assert (storage.scheme, storage.hostname, storage.path) == ("s3", STORE, "/arrayq")
    assert storage.username == store_env["AWS_ACCESS_KEY_ID"]
    assert storage.password == store_env["AWS_SECRET_ACCESS_KEY"]
    assert f"-s3.port={storage.port}" in compose_command(STORE)


@pytest.mark.parametrize("variables", [{}, {"S3_PORT": "9333"}, {"S3_BIND": "0.0.0.0"}])
def test_presigned_urls_are_signed_for_the_published_store_port(variables: dict[str, str]) -> None:
    api_env = compose_environment("api", variables)
    internal_port = urlsplit(api_env["ARRAYQ_STORAGE_URL"]).port
    host, _, port = api_env["ARRAYQ_S3_PUBLIC_ENDPOINT"].partition(":")
    assert host == "localhost"
    assert port == variables.get("S3_PORT", "8333")
    assert _published(STORE, variables)[-1].endswith(f":{port}:{internal_port}")


@pytest.mark.parametrize("name", ["api", STORE, "minio", "flower"])
def test_published_ports_are_on_loopback_by_default(name: str) -> None:
    assert all(port.startswith("127.0.0.1:") for port in _published(name, {}))


@pytest.mark.parametrize(("name", "variable"), [("api", "API_BIND"), (STORE, "S3_BIND")])
def test_bind_variables_open_the_published_ports(name: str, variable: str) -> None:
    assert all(port.startswith("0.0.0.0:") for port in _published(name, {variable: "0.0.0.0"}))


def test_a_public_store_endpoint_that_is_set_wins_over_the_port() -> None:
    variables = {"S3_PORT": "9333", "ARRAYQ_S3_PUBLIC_ENDPOINT": "s3.example.com:443"}
    assert compose_environment("api", variables)["ARRAYQ_S3_PUBLIC_ENDPOINT"] == (
        "s3.example.com:443"
    )


def test_the_minio_profile_shares_the_store_credentials() -> None:
    variables = {"S3_ENDPOINT": "minio:9000", "S3_ACCESS_KEY": "k3y", "S3_SECRET_KEY": "s3cret-key"}
    minio_env = compose_environment("minio", variables)
    storage = urlsplit(compose_environment("api", variables)["ARRAYQ_STORAGE_URL"])
    assert (storage.hostname, storage.port) == ("minio", 9000)
    assert (minio_env["MINIO_ROOT_USER"], minio_env["MINIO_ROOT_PASSWORD"]) == (
        storage.username,
        storage.password,
    )


@pytest.mark.parametrize("variables", [{}, {"ARRAYQ_REDIS_URL": "redis://elsewhere:6380/2"}])
def test_flower_watches_the_broker_of_the_api(variables: dict[str, str]) -> None:
    broker = compose_environment("api", variables)["ARRAYQ_REDIS_URL"]
    assert f"--broker={broker}" in compose_command("flower", variables)


def test_workers_can_be_scaled() -> None:
    worker = compose_service("worker")
    assert "container_name" not in worker
    assert "ports" not in worker
    assert "hostname" not in worker  # Celery node names must differ between replicas


def test_worker_gets_time_for_its_warm_shutdown() -> None:
    worker = compose_service("worker")
    assert worker.get("stop_signal", "SIGTERM") == "SIGTERM"
    assert _seconds(worker["stop_grace_period"]) > _worker_shutdown_seconds()


@pytest.mark.parametrize("name", ["redis", STORE, "minio", "api", "worker"])
def test_long_running_services_have_healthchecks(name: str) -> None:
    healthcheck = compose_service(name)["healthcheck"]
    assert not healthcheck.get("disable", False)
    assert healthcheck["test"][0] in ("CMD", "CMD-SHELL")


def test_api_starts_once_redis_the_store_and_the_bucket_are_ready() -> None:
    depends_on = compose_service("api")["depends_on"]
    assert depends_on["redis"]["condition"] == "service_healthy"
    assert depends_on[STORE]["condition"] == "service_healthy"
    assert depends_on["createbucket"]["condition"] == "service_completed_successfully"
    assert compose_service("createbucket")["depends_on"][STORE]["condition"] == "service_healthy"


def test_api_healthcheck_probes_the_port_it_listens_on() -> None:
    command = compose_command("api")
    port = command[command.index("--port") + 1]
    probe = " ".join(compose_service("api")["healthcheck"]["test"])
    assert f"127.0.0.1:{port}/healthz" in probe
    assert _published("api", {}) == [f"127.0.0.1:{port}:{port}"]


def test_redis_persists_every_write_and_never_evicts() -> None:
    pairs = set(_pairs(compose_command("redis")[1:]))
    assert ("--appendonly", "yes") in pairs
    assert ("--maxmemory-policy", "noeviction") in pairs
    assert any(volume.endswith(":/data") for volume in compose_service("redis")["volumes"])


def test_every_pulled_image_is_pinned() -> None:
    for name, spec in load_compose()["services"].items():
        if "build" in spec:
            continue
        tag = spec["image"].rpartition("/")[2].partition(":")[2]
        assert re.search(r"\d", tag) and tag != "latest", f"{name} image {spec['image']}"


def test_optional_services_sit_behind_profiles() -> None:
    services = load_compose()["services"]
    assert services["minio"]["profiles"] == ["minio"]
    assert services["flower"]["profiles"] == ["flower"]
    assert all("profiles" not in services[name] for name in ("redis", STORE, *APP_SERVICES))


def test_compose_commands_run_the_arrayq_roles() -> None:
    assert compose_command("api") == ["arrayq", "api", "--host", "0.0.0.0", "--port", "8000"]
    worker = compose_command("worker", {"WORKER_CONCURRENCY": "8"})
    assert worker[:2] == ["arrayq", "worker"]
    assert dict(_pairs(worker[2:])) == {"--concurrency": "8", "--queues": "default,long"}


def test_createbucket_runs_arrayqs_own_store_preparation() -> None:
    program, flag, module = compose_command("createbucket")
    assert (program, flag) == ("python", "-m")
    assert importlib.util.find_spec(module) is not None


# --- deploy/.env.example ------------------------------------------------------------------------


def test_env_example_lists_every_setting_and_nothing_else_under_the_prefix() -> None:
    names = {name for name in _env_example() if name.startswith("ARRAYQ_")}
    assert names == SETTING_NAMES


def test_env_example_sets_only_variables_the_compose_file_reads() -> None:
    assert set(_env_example()) - referenced_variables(COMPOSE_FILE.read_text()) == set()


@pytest.mark.parametrize("name", sorted(load_compose()["services"]))
def test_env_example_changes_nothing_until_edited(name: str) -> None:
    example = _env_example()
    assert compose_environment(name, example) == compose_environment(name)
    assert compose_command(name, example) == compose_command(name)


def test_env_file_values_override_the_compose_defaults() -> None:
    variables = {"ARRAYQ_INLINE_MAX_BYTES": "5", "S3_ACCESS_KEY": "other-key"}
    api_env = compose_environment("api", variables)
    assert api_env["ARRAYQ_INLINE_MAX_BYTES"] == "5"
    assert urlsplit(api_env["ARRAYQ_STORAGE_URL"]).username == "other-key"
    assert compose_environment(STORE, variables)["AWS_ACCESS_KEY_ID"] == "other-key"


# --- tests/support/compose.py -------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "variables", "expected"),
    [
        ("${A:-x}", {}, "x"),
        ("${A:-x}", {"A": ""}, "x"),
        ("${A-x}", {"A": ""}, ""),
        ("${A:-x}", {"A": "a"}, "a"),
        ("s3://${K:-k}@${H:-${D:-d}:1}/b", {}, "s3://k@d:1/b"),
        ("s3://${K:-k}@${H:-${D:-d}:1}/b", {"D": "e"}, "s3://k@e:1/b"),
        ("$$HOME and $A", {"A": "a"}, "$HOME and a"),
        ("${MISSING}", {}, ""),
    ],
)
def test_interpolation_follows_compose(text: str, variables: dict[str, str], expected: str) -> None:
    assert interpolate(text, variables) == expected


@pytest.mark.parametrize("text", ["${A:?required}", "${A", "${1A}"])
def test_interpolation_refuses_what_it_does_not_support(text: str) -> None:
    with pytest.raises(ValueError):
        interpolate(text, {})


def test_referenced_variables_include_nested_defaults() -> None:
    assert referenced_variables("${A:-${B:-x}} $C $$D") == {"A", "B", "C"}


# --- deploy/Dockerfile and .dockerignore --------------------------------------------------------


def test_image_runs_as_a_non_root_user() -> None:
    users = [args for instruction, args in _dockerfile() if instruction == "USER"]
    assert users, "no USER line"
    assert users[-1].partition(":")[0] not in ("root", "0")


def test_image_user_runs_with_a_group_that_exists() -> None:
    """`USER uid:gid` with a gid no group has makes Celery warn on every start."""
    uid, _, gid = next(args for i, args in reversed(_dockerfile()) if i == "USER").partition(":")
    commands = " ".join(args for instruction, args in _dockerfile() if instruction == "RUN")
    assert re.search(rf"groupadd [^&]*--gid {gid}\b", commands)
    assert re.search(rf"useradd [^&]*--uid {uid} [^&]*--gid {gid}\b", commands)


def test_image_builds_without_pulling_a_dockerfile_frontend() -> None:
    """A `# syntax=` line makes BuildKit pull the frontend image from a registry."""
    first_lines = (DEPLOY / "Dockerfile").read_text().splitlines()
    assert not any(re.match(r"#\s*syntax\s*=", line, re.IGNORECASE) for line in first_lines)


def test_image_commands_are_exec_form() -> None:
    commands = [args for instruction, args in _dockerfile() if instruction in ("CMD", "ENTRYPOINT")]
    assert commands
    for args in commands:
        argv = json.loads(args)
        assert isinstance(argv, list) and all(isinstance(arg, str) for arg in argv)


def test_image_starts_from_a_pinned_slim_python() -> None:
    bases = [args for instruction, args in _dockerfile() if instruction == "FROM"]
    assert len(bases) == 1
    assert re.fullmatch(r"python:3\.12\.\d+-slim(-\w+)?", bases[0])


def test_dependencies_are_installed_before_the_source_is_copied() -> None:
    steps = [f"{instruction} {args}" for instruction, args in _dockerfile()]
    first = _index_of(steps, "COPY pyproject.toml")
    dependencies = _index_of(steps, "pip install -r")
    source = _index_of(steps, "COPY api")
    package = _index_of(steps, "pip install --no-cache-dir --no-deps .")
    assert first < dependencies < source < package


def test_image_copies_every_package_of_the_distribution() -> None:
    pyproject = tomllib.loads((REPO_ROOT / "pyproject.toml").read_text())
    packages = set(pyproject["tool"]["setuptools"]["package-dir"].values())
    copied = {args.split()[0] for instruction, args in _dockerfile() if instruction == "COPY"}
    assert {*packages, pyproject["project"]["readme"], "pyproject.toml"} <= copied


def test_dockerignore_keeps_what_the_image_copies() -> None:
    patterns = [
        line.strip()
        for line in (REPO_ROOT / ".dockerignore").read_text().splitlines()
        if line.strip() and not line.startswith("#")
    ]
    copied = [args.split()[0] for instruction, args in _dockerfile() if instruction == "COPY"]
    for source in copied:
        assert not any(fnmatch.fnmatch(source, pattern) for pattern in patterns), source


# --- deploy/k8s ---------------------------------------------------------------------------------


def test_k8s_manifests_have_the_expected_kinds() -> None:
    kinds = Counter(document["kind"] for document in _k8s_documents())
    expected = {
        "Deployment": 2,
        "Service": 1,
        "ConfigMap": 1,
        "Secret": 1,
        "PodDisruptionBudget": 2,
        "Kustomization": 1,
    }
    assert kinds == expected


def test_kustomization_applies_every_manifest() -> None:
    (kustomization,) = _k8s_of_kind("Kustomization")
    manifests = {path.name for path in (DEPLOY / "k8s").glob("*.yaml")} - {"kustomization.yaml"}
    assert set(kustomization["resources"]) == manifests


# The oldest Kubernetes release still supported upstream when this was written, and the newest
# whose schemas the kubernetes-validate package ships (offline: the schemas are in the package).
K8S_VERSIONS = ["1.32.0", kubernetes_validate.latest_version()]


@pytest.mark.parametrize("version", K8S_VERSIONS)
def test_k8s_manifests_follow_the_kubernetes_schemas(version: str) -> None:
    documents = [d for d in _k8s_documents() if d["kind"] != "Kustomization"]
    for document in documents:
        try:
            kubernetes_validate.validate(document, version, strict=True)
        except kubernetes_validate.ValidationError as error:
            pytest.fail(f"{document['kind']} {document['metadata']['name']}: {error.message}")


def test_k8s_disruption_budgets_cover_every_deployment() -> None:
    budgets = _k8s_of_kind("PodDisruptionBudget")
    for deployment in _k8s_of_kind("Deployment"):
        labels = deployment["spec"]["template"]["metadata"]["labels"]
        (budget,) = [
            b for b in budgets if b["spec"]["selector"]["matchLabels"].items() <= labels.items()
        ]
        assert budget["spec"].get("maxUnavailable", 0) == 1 or budget["spec"]["minAvailable"] >= 1


def test_k8s_worker_liveness_is_the_compose_worker_healthcheck() -> None:
    (container,) = _deployment("arrayq-worker")["spec"]["template"]["spec"]["containers"]
    probe = container["livenessProbe"]
    assert probe["exec"]["command"] == compose_service("worker")["healthcheck"]["test"][1:]
    assert probe["timeoutSeconds"] >= 10


def test_keda_scales_the_workers_on_the_length_of_their_queues() -> None:
    scaled = _autoscale("ScaledObject")
    worker = _deployment("arrayq-worker")
    target = scaled["spec"]["scaleTargetRef"]
    assert (target["kind"], target["name"]) == ("Deployment", worker["metadata"]["name"])
    assert 1 <= scaled["spec"]["minReplicaCount"] < scaled["spec"]["maxReplicaCount"]
    (config,) = _k8s_of_kind("ConfigMap")
    broker = urlsplit(config["data"]["ARRAYQ_REDIS_URL"])
    triggers = scaled["spec"]["triggers"]
    assert {trigger["type"] for trigger in triggers} == {"redis"}
    assert sorted(trigger["metadata"]["listName"] for trigger in triggers) == sorted(QUEUES)
    for trigger in triggers:
        metadata = trigger["metadata"]
        assert metadata["address"] == f"{broker.hostname}:{broker.port or 6379}"
        assert metadata["databaseIndex"] == (broker.path.strip("/") or "0")
        assert int(metadata["listLength"]) >= 1


def test_keda_scaled_object_is_optional_and_applied_by_its_own_kustomization() -> None:
    kustomization = _autoscale("Kustomization")
    assert kustomization["resources"] == ["scaledobject.yaml"]
    (main,) = _k8s_of_kind("Kustomization")
    assert not any("autoscale" in resource for resource in main["resources"])
    scaled = _autoscale("ScaledObject")
    assert scaled["apiVersion"] == "keda.sh/v1alpha1"
    behavior = scaled["spec"]["advanced"]["horizontalPodAutoscalerConfig"]["behavior"]
    assert behavior["scaleDown"]["stabilizationWindowSeconds"] >= 60


def test_k8s_config_and_secret_hold_only_settings() -> None:
    (config,) = _k8s_of_kind("ConfigMap")
    (secret,) = _k8s_of_kind("Secret")
    assert set(config["data"]) <= SETTING_NAMES
    assert set(secret["stringData"]) <= SETTING_NAMES
    assert {"ARRAYQ_STORAGE_URL", "ARRAYQ_API_KEYS"} <= set(secret["stringData"])
    assert "ARRAYQ_STORAGE_URL" not in config["data"]


def test_k8s_config_values_are_valid_settings() -> None:
    (config,) = _k8s_of_kind("ConfigMap")
    (secret,) = _k8s_of_kind("Secret")
    settings = _settings_from({**config["data"], **secret["stringData"]})
    assert settings.tenants_by_key()


def test_k8s_pods_read_the_config_and_the_secret() -> None:
    names = {document["metadata"]["name"] for document in _k8s_of_kind("ConfigMap", "Secret")}
    for container in _k8s_containers():
        sources = container["envFrom"]
        refs = {next(iter(source.values()))["name"] for source in sources}
        assert refs == names


def test_k8s_api_probes_and_service() -> None:
    api = _deployment("arrayq-api")
    (container,) = api["spec"]["template"]["spec"]["containers"]
    (port,) = container["ports"]
    assert container["readinessProbe"]["httpGet"] == {"path": "/readyz", "port": port["name"]}
    assert container["livenessProbe"]["httpGet"] == {"path": "/healthz", "port": port["name"]}
    (service,) = _k8s_of_kind("Service")
    assert service["spec"]["selector"] == api["spec"]["template"]["metadata"]["labels"]
    assert service["spec"]["ports"][0]["targetPort"] == port["name"]
    assert f"{port['containerPort']}" == container["command"][-1]


def test_k8s_selectors_match_their_pods() -> None:
    for deployment in _k8s_of_kind("Deployment"):
        labels = deployment["spec"]["template"]["metadata"]["labels"]
        assert deployment["spec"]["selector"]["matchLabels"].items() <= labels.items()


def test_k8s_workers_scale_and_shut_down_warm() -> None:
    spec = _deployment("arrayq-worker")["spec"]
    assert spec["replicas"] >= 2
    grace = spec["template"]["spec"]["terminationGracePeriodSeconds"]
    assert grace > _worker_shutdown_seconds()
    assert "ports" not in spec["template"]["spec"]["containers"][0]


def test_k8s_runs_the_commands_of_the_compose_file() -> None:
    for name in ("api", "worker"):
        (container,) = _deployment(f"arrayq-{name}")["spec"]["template"]["spec"]["containers"]
        assert container["command"] == compose_command(name)


def test_k8s_runs_as_the_image_user() -> None:
    users = [args for instruction, args in _dockerfile() if instruction == "USER"]
    uid = int(users[-1].partition(":")[0])
    for deployment in _k8s_of_kind("Deployment"):
        security = deployment["spec"]["template"]["spec"]["securityContext"]
        assert security["runAsNonRoot"] is True
        assert security["runAsUser"] == uid


# --- the compose store and bucket one-shot, run as local processes ------------------------------


@pytest.mark.s3
def test_compose_store_accepts_its_keys_and_createbucket_makes_the_bucket(tmp_path: Path) -> None:
    try:
        weed = weed_binary()
    except FileNotFoundError as error:
        pytest.skip(str(error))
    ports = dict(zip(PORT_FLAGS, free_ports(len(PORT_FLAGS)), strict=True))
    process = _start_store(weed, tmp_path, ports)
    try:
        _wait_healthy(_healthcheck_url(ports["s3.port"]), process)
        variables = {"S3_ENDPOINT": f"127.0.0.1:{ports['s3.port']}"}
        for _ in range(2):  # a second run finds the bucket and still succeeds
            _run_createbucket(variables, tmp_path)
        env = compose_environment(STORE)
        assert _client(variables, env["AWS_SECRET_ACCESS_KEY"]).bucket_exists(bucket_name="arrayq")
        with pytest.raises(S3Error, match="AccessDenied"):
            _client(variables, "not-the-secret").bucket_exists(bucket_name="arrayq")
    finally:
        process.terminate()
        process.wait(timeout=30)


def _start_store(weed: str, tmp_path: Path, ports: dict[str, int]) -> subprocess.Popen[bytes]:
    """The compose command, then local overrides (for Go flags the last one wins)."""
    local = [f"-dir={tmp_path / 'data'}", "-ip=127.0.0.1", "-ip.bind=127.0.0.1", "-admin.ui=false"]
    argv = [weed, *compose_command(STORE), *local, *(f"-{k}={v}" for k, v in ports.items())]
    (tmp_path / "data").mkdir()
    env = {"PATH": "/usr/bin:/bin", "HOME": str(tmp_path), **compose_environment(STORE)}
    with (tmp_path / "weed.log").open("wb") as log:
        return subprocess.Popen(argv, env=env, cwd=tmp_path, stdout=log, stderr=log)


def _healthcheck_url(s3_port: int) -> str:
    url = next(arg for arg in compose_service(STORE)["healthcheck"]["test"] if "://" in arg)
    return url.replace(":8333/", f":{s3_port}/")


def _wait_healthy(url: str, process: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline and process.poll() is None:
        try:
            with urllib.request.urlopen(url, timeout=2) as response:
                if response.status == 200:
                    return
        except OSError:
            pass
        time.sleep(0.2)
    pytest.fail(f"the compose store command never answered {url}")


def _run_createbucket(variables: dict[str, str], tmp_path: Path) -> None:
    _, flag, module = compose_command("createbucket", variables)
    env = {"PATH": "/usr/bin:/bin", "HOME": str(tmp_path)}
    env.update(compose_environment("createbucket", variables))
    done = subprocess.run(
        [sys.executable, flag, module], env=env, capture_output=True, text=True, timeout=150
    )
    assert done.returncode == 0, done.stderr
    assert "object store ready" in done.stderr


def _client(variables: dict[str, str], secret: str) -> Minio:
    storage = urlsplit(compose_environment("api", variables)["ARRAYQ_STORAGE_URL"])
    return Minio(
        endpoint=storage.netloc.rpartition("@")[2],
        access_key=storage.username,
        secret_key=secret,
        secure=False,
        region="us-east-1",
    )


# --- helpers ------------------------------------------------------------------------------------


def _settings_from(environment: dict[str, str]) -> Settings:
    """Settings validated from these values alone, whatever the test process's environment."""
    fields = {name.removeprefix("ARRAYQ_").lower(): value for name, value in environment.items()}
    return Settings(**fields)


def _worker_shutdown_seconds() -> float:
    field = Settings.model_fields.get("worker_shutdown_seconds")
    return float(field.default) if field is not None else WORKER_SHUTDOWN_SECONDS


def _published(name: str, variables: dict[str, str]) -> list[str]:
    return [interpolate(port, variables) for port in compose_service(name).get("ports", [])]


def _env_example() -> dict[str, str]:
    lines = (DEPLOY / ".env.example").read_text().splitlines()
    pairs = (line.partition("=") for line in lines if line.strip() and not line.startswith("#"))
    return {name.strip(): value.strip() for name, _, value in pairs}


def _dockerfile() -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) per instruction, continuation lines joined, comments dropped."""
    lines = (DEPLOY / "Dockerfile").read_text().splitlines()
    lines = [line for line in lines if not line.lstrip().startswith("#")]
    joined = re.sub(r"\\\n", " ", "\n".join(lines))
    instructions = [line.strip().split(None, 1) for line in joined.splitlines() if line.strip()]
    return [(words[0].upper(), words[1] if len(words) > 1 else "") for words in instructions]


def _index_of(steps: list[str], fragment: str) -> int:
    return next(index for index, step in enumerate(steps) if fragment in step)


def _k8s_documents() -> list[dict[str, Any]]:
    documents = []
    for path in sorted((DEPLOY / "k8s").glob("*.yaml")):
        documents += [doc for doc in yaml.safe_load_all(path.read_text()) if doc]
    return documents


def _autoscale(kind: str) -> dict[str, Any]:
    documents = []
    for path in sorted((DEPLOY / "k8s" / "autoscale").glob("*.yaml")):
        documents += [doc for doc in yaml.safe_load_all(path.read_text()) if doc]
    (found,) = [document for document in documents if document["kind"] == kind]
    return found


def _k8s_of_kind(*kinds: str) -> list[dict[str, Any]]:
    return [document for document in _k8s_documents() if document["kind"] in kinds]


def _deployment(name: str) -> dict[str, Any]:
    (found,) = [d for d in _k8s_of_kind("Deployment") if d["metadata"]["name"] == name]
    return found


def _k8s_containers() -> list[dict[str, Any]]:
    return [
        container
        for deployment in _k8s_of_kind("Deployment")
        for container in deployment["spec"]["template"]["spec"]["containers"]
    ]


def _pairs(argv: list[str]) -> list[tuple[str, str]]:
    return list(zip(argv[::2], argv[1::2], strict=False))


def _seconds(duration: str) -> float:
    """A Compose duration such as `60s`, `1m30s` or `1h`."""
    units = {"h": 3600, "m": 60, "s": 1, "ms": 0.001, "us": 0.000001}
    parts = re.findall(r"(\d+(?:\.\d+)?)(h|ms|us|m|s)", str(duration))
    assert parts and "".join(n + u for n, u in parts) == str(duration), duration
    return sum(float(number) * units[unit] for number, unit in parts)
