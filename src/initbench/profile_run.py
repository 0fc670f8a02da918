"""DVC runs of the project: a profile as a DVC experiment (``initbench profile <name> --run``,
``make profile``, ``make quick``) and ``initbench pipeline`` (MLproject's entry points).

``dvc exp run --temp -n <name> -S ...``: DVC copies the checkout (HEAD and the uncommitted
changes to tracked files; untracked files stay out) into ``.dvc/tmp/exps/``, applies the profile's overrides
(:func:`initbench.profiles.overrides`) there and runs the pipeline: the tracked params.yaml,
dvc.lock and reports/ of the checkout are left as they were (DVC itself rewrites params.yaml for
a moment while it stashes the experiment, and puts it back), the outputs go to the project's DVC
cache (a second run of the same profile on the same code restores them from DVC's run cache
instead of retraining), and the runs log into the project's store
(:func:`initbench.locations.store_uri`). The stages import the copy's own ``src`` -- the code
DVC tracks as their dependency. The experiment is named after the profile; an earlier one of the
same name on the same commit is kept, renamed ``<name>-<its date>``.

DVC runs as ``python -m initbench.profile_run <dvc arguments>`` (:func:`dvc_main`): ``dvc`` with
one workaround for DVC 3.67, so that a rerun in a fresh clone (a committed dvc.lock whose
outputs are not in the DVC cache) restores from the run cache instead of failing.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import TYPE_CHECKING

from initbench.profiles import apply_profile, overrides

if TYPE_CHECKING:
    from dvc.stage import Stage


def _git(root: Path, *args: str) -> str:
    proc = subprocess.run(["git", *args], cwd=root, capture_output=True, text=True, timeout=30)
    return proc.stdout.strip() if proc.returncode == 0 else ""


def experiment_ref(root: Path, name: str) -> str:
    """The git ref DVC keeps experiment ``name`` of HEAD under (DVC's ``ExpRefInfo`` layout)."""
    head = _git(root, "rev-parse", "HEAD")
    if not head:
        raise RuntimeError(f"{root} has no commit: a DVC experiment needs one (git commit first)")
    return f"refs/exps/{head[:2]}/{head[2:]}/{name}"


def _keep_earlier(root: Path, name: str, env: dict[str, str]) -> str | None:
    """Rename an earlier experiment ``name`` of this commit (DVC refuses a second one; ``-f``
    would also retrain every stage): return its new name."""
    ref = experiment_ref(root, name)
    if not _git(root, "rev-parse", "--verify", "-q", ref):
        return None
    when = _git(root, "log", "-1", "--format=%cd", "--date=format:%Y%m%d-%H%M%S", ref)
    new = f"{name}-{when}"
    subprocess.run(["dvc", "exp", "rename", name, new], cwd=root, env=env, check=True,
                   capture_output=True, text=True)
    return new


def dvc_main(argv: list[str]) -> int:
    """``dvc <argv>``. DVC 3.67's ``exp run`` stages each reproduced stage's files with git,
    asking its index which dependencies are DVC outputs. That index is loaded at the first stage
    and reloaded only when a stage runs its command: after stages restored from the run cache
    it still holds the dvc.lock the experiment started from, and a dependency inside a directory
    output of that lock (``data/processed/mnist.npz``) whose listing is not in the DVC cache (a
    fresh clone) fails the experiment: "failed to load directory ('data', 'processed')". Here
    that question is asked again of a reloaded index, as after a stage that ran."""
    from dvc.cli import main
    from dvc.stage import utils
    from dvc_data.index import DataIndexDirError

    stage_files = getattr(utils, "_get_stage_files", None)

    def with_current_index(stage: Stage) -> list[str]:
        try:
            return stage_files(stage)
        except DataIndexDirError:
            stage.repo._reset()
            return stage_files(stage)

    if stage_files is not None:  # (a DVC without it runs as it is)
        utils._get_stage_files = with_current_index
    return main(argv)


def run_profile(root: Path, name: str) -> int:
    """Run profile ``name`` as the DVC experiment ``name``; return dvc's exit status."""
    sets = overrides(root / "params.yaml", name)  # the name, the profile and the result: checked
    env = dict(os.environ)
    if (root / "src" / "initbench").is_dir():
        # Relative: each stage imports the src of the workspace DVC runs it in.
        env["PYTHONPATH"] = os.pathsep.join(filter(None, ["src", env.get("PYTHONPATH")]))
    try:
        earlier = _keep_earlier(root, name, env)
    except subprocess.CalledProcessError as err:
        raise RuntimeError(f"dvc exp rename {name}: {(err.stderr or '').strip()}") from None
    if earlier:
        print(f"the earlier experiment {name!r} of this commit is now {earlier!r}")
    command = [sys.executable, "-m", "initbench.profile_run", "exp", "run", "--temp", "-n", name,
               *(a for s in sets for a in ("-S", s))]
    proc = subprocess.Popen(command, cwd=root, env=env)
    try:
        status = proc.wait()
    except KeyboardInterrupt:
        proc.wait()  # dvc got the same Ctrl-C: it ends its stages and cleans up its copy
        raise
    if status == 0:
        ref = experiment_ref(root, name)
        print(f"profile {name!r}: DVC experiment {name!r} (dvc exp show); its report: git show "
              f"{ref}:reports/report.md (dvc exp apply {name}: it and its outputs into the "
              "workspace); its runs: make ui")
    return status


def run_pipeline(root: Path, sets: list[str], dvc_args: list[str]) -> int:
    """``initbench pipeline`` (MLproject's entry points): ``dvc repro`` (``dvc exp run -S ...``
    with overrides) through :func:`dvc_main`, the run ``mlflow run`` created (if any) as the
    pipeline's parent run; return dvc's exit status."""
    env = dict(os.environ)
    if (root / "src" / "initbench").is_dir():
        # Every stage runs this checkout's code, even where `initbench` is an older installed copy
        # (an environment `mlflow run` reuses, a Docker image built from an earlier commit).
        env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(root / "src"), env.get("PYTHONPATH")]))
    if "MLFLOW_RUN_ID" in env:
        env["INITBENCH_PARENT_RUN_ID"] = env.pop("MLFLOW_RUN_ID")
    dvc = [sys.executable, "-m", "initbench.profile_run"]
    command = [*dvc, "exp", "run", *(a for o in sets for a in ("-S", o))] if sets else [*dvc, "repro"]
    return subprocess.call([*command, *dvc_args], cwd=root, env=env)


def profile_command(root: Path, params: Path, name: str, run: bool, show: bool) -> None:
    """``initbench profile``: ``--run`` it as the DVC experiment ``name``; ``--overrides``: print
    its ``dvc exp run -S`` values; else overlay it onto ``params`` (a project copy's)."""
    if run:
        sys.exit(run_profile(root, name))
    if show:
        print("\n".join(overrides(params, name)))
        return
    apply_profile(params, name)
    print(f"{params}: applied profile {name!r}")


if __name__ == "__main__":
    sys.exit(dvc_main(sys.argv[1:]))
