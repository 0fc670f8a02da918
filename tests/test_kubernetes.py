"""Kubernetes, as far as it can be checked without a cluster, a Docker daemon or a registry.

``mlflow run deploy/kubernetes --backend kubernetes`` goes through MLflow's own code (project
loading, backend config parsing, run creation, the Job built from job-template.yaml); only the three
calls that need absent infrastructure are replaced: the image build, the push, and the API call
that creates the Job, which is captured instead. The captured Job is then checked by the
Kubernetes client's own models (every field known, of the right type) and by ``kubectl``
client-side.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
from pathlib import Path
from types import SimpleNamespace

import pytest
import yaml

from .conftest import ROOT

K8S = ROOT / "deploy" / "kubernetes"
SERVER = "http://initbench-mlflow.initbench.svc:5000"


@pytest.fixture
def submitted(monkeypatch, mlflow_store):
    """Run the project's Kubernetes entry point through MLflow; return (job, run id)."""
    import kubernetes
    import mlflow.projects
    from mlflow.projects import docker
    from mlflow.projects import kubernetes as kb

    jobs = []
    monkeypatch.setattr(docker, "validate_docker_installation", lambda: None)
    monkeypatch.setattr(docker, "build_docker_image", lambda **kw: SimpleNamespace(
        tags=[f"{kw['repository_uri']}:{kw['run_id'][:7]}"]))
    monkeypatch.setattr(kb, "push_image_to_registry", lambda tag: "sha256:" + "ab" * 32)
    monkeypatch.setattr(kb, "_load_kube_context", lambda context=None: None)
    monkeypatch.setattr(kubernetes.client.BatchV1Api, "create_namespaced_job",
                        lambda self, namespace, body, pretty: jobs.append((namespace, body)))
    monkeypatch.setenv("KUBE_MLFLOW_TRACKING_URI", SERVER)
    monkeypatch.chdir(ROOT)  # the config's template path is relative to the project root
    run = mlflow.projects.run(
        str(K8S), entry_point="cell", parameters={"stage": "train_depth@5-relu", "epochs": "3"},
        backend="kubernetes", backend_config=str(K8S / "kubernetes_config.json"),
        experiment_name="initbench", synchronous=False)
    ((namespace, job),) = jobs
    assert namespace == job["metadata"]["namespace"] == "initbench"
    return job, run.run_id


def test_the_job_mlflow_builds_runs_one_cell_against_the_shared_server(submitted, mlflow_store):
    from mlflow.tracking import MlflowClient

    job, run_id = submitted
    assert re.fullmatch(r"initbench-\d{4}-\d\d-\d\d-\d\d-\d\d-\d\d-\d+", job["metadata"]["name"])
    (container,) = job["spec"]["template"]["spec"]["containers"]
    assert container["name"] == "initbench"
    assert container["image"] == f"registry.example.com/initbench:{run_id[:7]}@sha256:{'ab' * 32}"
    assert container["command"] == [
        "initbench", "pipeline", "--set", "train.epochs=3", "--set", "study.seeds=",
        "train_depth@5-relu"]
    env = {e["name"]: e["value"] for e in container["env"]}
    assert env["MLFLOW_TRACKING_URI"] == SERVER and env["MLFLOW_RUN_ID"] == run_id
    assert env["INITBENCH_ROOT"] == "/opt/initbench"
    assert job["spec"]["backoffLimit"] == 0
    assert job["spec"]["template"]["spec"]["restartPolicy"] == "Never"
    # The run MLflow created is the parent the cell logs under (`initbench pipeline` passes
    # MLFLOW_RUN_ID on as INITBENCH_PARENT_RUN_ID).
    tags = MlflowClient(mlflow_store).get_run(run_id).data.tags
    assert tags["mlflow.project.backend"] == "kubernetes"
    assert tags["mlflow.project.entryPoint"] == "cell"


def test_the_job_is_a_valid_batch_v1_job(submitted, tmp_path):
    """Every field is one the Kubernetes API knows, with the right type (the client's models drop
    unknown fields and reject wrong types: a round trip must give the manifest back), and kubectl
    reads it as a Job."""
    from kubernetes.client import ApiClient

    job, _ = submitted
    client = ApiClient()
    model = client.deserialize(SimpleNamespace(data=json.dumps(job)), "V1Job")
    assert client.sanitize_for_serialization(model) == job
    broken = json.loads(json.dumps(job))
    broken["spec"]["template"]["spec"]["containerz"] = broken["spec"]["template"]["spec"].pop(
        "containers")
    with pytest.raises(ValueError, match="containers"):
        client.deserialize(SimpleNamespace(data=json.dumps(broken)), "V1Job")

    kubectl = shutil.which("kubectl")
    assert kubectl, "kubectl not found: apt-get install kubernetes-client"
    path = tmp_path / "job.json"
    path.write_text(json.dumps(job))
    proc = subprocess.run(
        [kubectl, "set", "env", "--local", "--dry-run=client", "-f", str(path), "CHECK=1",
         "-o", "jsonpath={.kind} {.spec.template.spec.containers[0].command[0]}"],
        capture_output=True, text=True, timeout=60, check=False)
    assert proc.returncode == 0 and proc.stdout == "Job initbench", proc.stderr


def test_kubernetes_project_matches_the_root_project_and_the_image():
    """The Kubernetes MLproject's parameters mean what the root one's do (same names, no second
    default), and the Dockerfile installs what python_env.yaml does, on the same Python."""
    root = yaml.safe_load((ROOT / "MLproject").read_text())["entry_points"]["main"]["parameters"]
    k8s = yaml.safe_load((K8S / "MLproject").read_text())
    for entry in k8s["entry_points"].values():
        for name, spec in entry["parameters"].items():
            if name != "stage":
                assert spec == root[name], name
    python = yaml.safe_load((ROOT / "python_env.yaml").read_text())["python"]
    dockerfile = (ROOT / "Dockerfile").read_text()
    assert f"ARG PYTHON={python}\n" in dockerfile and "pip install -r" in dockerfile
    ignored = (ROOT / ".dockerignore").read_text().split()
    assert {"data/", ".venv/", "mlflow.db"} <= set(ignored) and ".git" not in ignored
    template = yaml.safe_load((K8S / "job-template.yaml").read_text())
    assert template["spec"]["template"]["spec"]["containers"][0]["env"][0] == {
        "name": "INITBENCH_ROOT", "value": "/opt/initbench"}
    assert "WORKDIR /opt/initbench" in dockerfile
    assert Path(json.loads((K8S / "kubernetes_config.json").read_text())[
        "kube-job-template-path"]) == (K8S / "job-template.yaml").relative_to(ROOT)


def test_the_gpu_image_installs_one_tensorflow(tmp_path):
    """The Dockerfile's GPU build replaces the pinned CPU TensorFlow with the one given, whatever
    spelling requirements.lock uses for its name (pip freeze writes tensorflow_cpu)."""
    text = (ROOT / "Dockerfile").read_text().replace("\\\n", " ")
    (line,) = [ln for ln in text.splitlines() if ln.startswith('RUN if [ -n "$TENSORFLOW" ]')]
    script = line.removeprefix("RUN ").split("&& pip install -r")[0]
    shutil.copy(ROOT / "requirements.lock", tmp_path)
    out = tmp_path / "requirements.txt"
    subprocess.run(["sh", "-c", script.replace("/tmp/requirements.txt", str(out))], cwd=tmp_path,
                   env={"TENSORFLOW": "tensorflow[and-cuda]==2.21.*", "PATH": os.environ["PATH"]},
                   check=True, timeout=30)
    names = [re.split(r"[=<>\[ ]", ln)[0].lower().replace("_", "-")
             for ln in out.read_text().splitlines() if ln.strip()]
    pinned = [ln for ln in (ROOT / "requirements.lock").read_text().splitlines() if ln.strip()]
    assert [n for n in names if n.startswith("tensorflow")] == ["tensorflow"]
    assert len(names) == len(pinned) and "keras" in names


def test_one_job_per_cell_under_one_parent(submitted, mlflow_store, monkeypatch):
    """deploy/kubernetes/submit_cells.py: one Job per cell, each project run a child of one
    sweep run."""
    import importlib.util

    import mlflow
    from kubernetes.client import BatchV1Api
    from mlflow.tracking import MlflowClient

    jobs = []
    monkeypatch.setattr(BatchV1Api, "create_namespaced_job",
                        lambda self, namespace, body, pretty: jobs.append(body))
    spec = importlib.util.spec_from_file_location("submit_cells", K8S / "submit_cells.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    stages = ["train", "train_depth@2-relu", "train_depth@20-tanh"]
    parent, runs = module.submit(stages, {"epochs": "2"}, wait=False, name="cells")
    mlflow.end_run()
    assert [j["spec"]["template"]["spec"]["containers"][0]["command"][-1] for j in jobs] == stages
    assert len({j["metadata"]["name"] for j in jobs}) == len(stages)
    client = MlflowClient(mlflow_store)
    for run in runs:
        tags = client.get_run(run.run_id).data.tags
        assert tags["mlflow.parentRunId"] == parent and tags["mlflow.project.backend"] == "kubernetes"
    assert client.get_run(parent).data.tags["initbench.role"] == "sweep"
    with pytest.raises(SystemExit, match="unknown stage"):
        module.main(["--cells", "train,train_depth@3-relu"])
    with pytest.raises(SystemExit, match="unknown parameter"):
        module.main(["-P", "lr=1"])
