"""The deployment files agree with each other and with the code: every setting the production
instance reads from the environment is given by the compose stack, the services run the code
location this repository defines, the Helm values carry the same instance settings as
dagster.yaml. (The instance file itself is loaded by Dagster against a real Postgres and S3
server in tests/integration/test_instance.py.)"""

from __future__ import annotations

import re
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parents[2]
DEPLOY = REPO / "deploy"


def load(name: str) -> dict:
    return yaml.safe_load((DEPLOY / name).read_text())


def env_names(node: object) -> set[str]:
    """The environment variables a Dagster instance config reads (`{env: NAME}`)."""
    if isinstance(node, dict):
        if set(node) == {"env"}:
            return {node["env"]}
        return set().union(*(env_names(v) for v in node.values()))
    if isinstance(node, list):
        return set().union(*(env_names(v) for v in node))
    return set()


def test_the_compose_stack_gives_every_setting_the_instance_reads():
    compose = load("docker-compose.yml")
    services = compose["services"]
    assert {"postgres", "minio", "buckets", "code", "daemon", "webserver"} <= set(services)
    needed = env_names(load("dagster.postgres.yaml"))
    assert needed == {"DAGSTER_PG_URL", "DAGSTER_COMPUTE_LOGS_BUCKET"}
    for name in ("code", "daemon", "webserver"):
        env = services[name]["environment"]
        assert needed <= set(env), name
        assert env["TALENTVAULT_MODE"] == "live"
        # the backups in a bucket of the stack's store, which the `buckets` service creates;
        # every service's cache on the one shared volume
        bucket = env["TALENTVAULT_DATA_DIR"].removeprefix("s3://").split("/")[0]
        assert f"mc mb --ignore-existing s3/{bucket}" in services["buckets"]["entrypoint"]
        assert f"cache:{env['TALENTVAULT_CACHE_DIR']}" in services[name]["volumes"]
    url = services["code"]["environment"]["DAGSTER_PG_URL"]
    assert url.startswith("postgresql+psycopg2://") and "@postgres:5432/dagster" in url
    db = services["postgres"]["environment"]
    assert db["POSTGRES_USER"] == "dagster" and db["POSTGRES_DB"] == "dagster"


def test_the_services_run_this_code_location():
    compose = load("docker-compose.yml")["services"]
    code = compose["code"]["command"]
    assert code[:3] == ["dagster", "api", "grpc"]
    assert code[code.index("-m") + 1] == "orchestration.definitions"
    server = load("workspace.yaml")["load_from"][0]["grpc_server"]
    assert (server["host"], str(server["port"])) == ("code", code[code.index("-p") + 1])
    for name in ("daemon", "webserver"):
        assert "/opt/dagster/home/workspace.yaml" in compose[name]["command"]
    dockerfile = (DEPLOY / "Dockerfile").read_text()
    assert "COPY deploy/dagster.postgres.yaml /opt/dagster/home/dagster.yaml" in dockerfile
    assert "uv sync --locked --no-dev" in dockerfile
    for package in ("assets", "checks", "orchestration", "sandbox", "specs"):
        assert re.search(rf"^COPY {package} {package}$", dockerfile, re.M), package


def test_the_helm_values_keep_the_instance_settings_of_dagster_yaml():
    values = load("helm/values.yaml")
    local = yaml.safe_load((REPO / "dagster.yaml").read_text())
    prod = load("dagster.postgres.yaml")
    [deployment] = values["dagster-user-deployments"]["deployments"]
    assert deployment["dagsterApiGrpcArgs"] == ["-m", "orchestration.definitions"]
    assert values["runLauncher"]["type"] == "K8sRunLauncher"
    assert values["postgresql"]["postgresqlScheme"] == "postgresql+psycopg2"
    assert values["additionalInstanceConfig"]["concurrency"] == local["concurrency"]
    monitoring = values["dagsterDaemon"]["runMonitoring"]
    assert monitoring["enabled"] and monitoring["maxResumeRunAttempts"] == \
        local["run_monitoring"]["max_resume_run_attempts"] == 0
    logs = values["computeLogManager"]["config"]["customComputeLogManager"]
    assert (logs["module"], logs["class"]) == (prod["compute_logs"]["module"],
                                               prod["compute_logs"]["class"])
    # the run pods see the same bucket, replica and cache volume as the code location
    launcher = values["runLauncher"]["config"]["k8sRunLauncher"]
    for name in ("TALENTVAULT_DATA_DIR", "TALENTVAULT_CACHE_DIR", "TALENTVAULT_REPLICA_URL"):
        assert f"{name}={deployment['env'][name]}" in launcher["envVars"]
    assert deployment["env"]["TALENTVAULT_DATA_DIR"].startswith("s3://")
    assert launcher["volumeMounts"] == deployment["volumeMounts"]
    assert launcher["volumes"] == deployment["volumes"]


def helm_instance(values: dict) -> dict:
    """The dagster.yaml the chart renders from the values this deployment sets: the chart's
    instance template maps each camelCase value to the instance's snake_case setting (only the
    keys set in deploy/helm/values.yaml, plus what the chart itself always adds)."""
    pg, launcher = values["postgresql"], values["runLauncher"]["config"]["k8sRunLauncher"]
    logs = values["computeLogManager"]["config"]["customComputeLogManager"]
    monitoring = values["dagsterDaemon"]["runMonitoring"]
    snake = {"startTimeoutSeconds": "start_timeout_seconds",
             "pollIntervalSeconds": "poll_interval_seconds",
             "maxResumeRunAttempts": "max_resume_run_attempts",
             "freeSlotsAfterRunEndSeconds": "free_slots_after_run_end_seconds"}
    return {
        "storage": {"postgres": {"postgres_db": {
            "username": pg["postgresqlUsername"], "password": {"env": "DAGSTER_PG_PASSWORD"},
            "hostname": pg["postgresqlHost"], "db_name": pg["postgresqlDatabase"],
            "port": pg["service"]["port"], "params": {}, "scheme": pg["postgresqlScheme"]}}},
        "run_launcher": {"module": "dagster_k8s", "class": "K8sRunLauncher", "config": {
            "load_incluster_config": True, "instance_config_map": "talentvault-dagster-instance",
            "dagster_home": "/opt/dagster/dagster_home",
            "postgres_password_secret": "dagster-postgresql-secret",
            "env_secrets": [s["name"] for s in launcher["envSecrets"]],
            "env_vars": launcher["envVars"], "volumes": launcher["volumes"],
            "volume_mounts": launcher["volumeMounts"], "resources": launcher["resources"]}},
        "compute_logs": {"module": logs["module"], "class": logs["class"],
                         "config": logs["config"]},
        "run_monitoring": {"enabled": monitoring["enabled"],
                           **{snake[k]: v for k, v in monitoring.items() if k in snake}},
        "telemetry": {"enabled": values["telemetry"]["enabled"]},
        **values["additionalInstanceConfig"],
    }


def class_config_errors(entry: dict) -> list[str]:
    """A configurable class's config (`module`, `class`, `config`) against its own schema."""
    import importlib

    from dagster._config import validate_config

    cls = getattr(importlib.import_module(entry["module"]), entry["class"])
    return [e.message for e in validate_config(cls.config_type(), entry["config"]).errors or []]


def test_the_helm_instance_settings_pass_dagsters_own_config_schema(tmp_path):
    """Dagster validates the instance the chart renders from our values (its schema), and the
    run launcher's and the compute log manager's own config schemas (dagster-k8s,
    dagster-obstore): a misspelt or misplaced setting fails here, not in the cluster."""
    from dagster._core.instance.config import dagster_instance_config

    instance = helm_instance(load("helm/values.yaml"))
    (tmp_path / "dagster.yaml").write_text(yaml.safe_dump(instance))
    config, _ = dagster_instance_config(str(tmp_path))
    assert config["run_monitoring"]["max_resume_run_attempts"] == 0
    assert class_config_errors(instance["run_launcher"]) == []
    assert class_config_errors(instance["compute_logs"]) == []
    # and the check can fail: a misspelt setting is refused by Dagster
    logs = instance["compute_logs"]["config"]
    logs["buckets"] = logs.pop("bucket")
    assert any('unexpected config entry "buckets"' in e
               for e in class_config_errors(instance["compute_logs"]))
    launcher = instance["run_launcher"]["config"]
    launcher["env_secret"] = launcher.pop("env_secrets")
    assert class_config_errors(instance["run_launcher"])
