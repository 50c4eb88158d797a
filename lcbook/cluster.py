"""Grids beyond one machine: each job of ``python -m lcbook grid`` submitted through submitit
(https://github.com/facebookincubator/submitit), the engine most SLURM users already have,
instead of a scheduler of our own.

A job is the same resumable command line a local grid runs, ``python -m lcbook run MODEL COMBO
BUDGET --profile P --seed S``, in its own process on the allocated node. If SLURM pre-empts or
times out a job, submitit requeues it (:class:`RunCommand` is checkpointable) and the run resumes
from its last LC step (its checkpoint under ``$LCBOOK_RUNS_DIR``, which must be on a file system
the nodes share, as must the checkout's ``data/results``).

submitit is optional: ``pip install submitit``. Its ``local`` cluster runs the jobs as local
processes (what the tests use); ``slurm`` submits them with ``sbatch``; ``auto`` picks SLURM when
``sbatch`` exists.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Dict, List, Optional, Sequence

try:  # optional dependency
    import submitit
    _Checkpointable = submitit.helpers.Checkpointable
except ImportError:  # pragma: no cover - exercised only without submitit
    submitit = None
    _Checkpointable = object

#: The clusters :func:`submit` takes (submitit's names).
CLUSTERS = ("auto", "slurm", "local", "debug")


class RunCommand(_Checkpointable):
    """A submitit job that runs one command line in a fresh process and returns its exit status;
    on pre-emption submitit resubmits it with the same arguments (the command resumes)."""

    def __call__(self, argv: Sequence[str]) -> int:
        return subprocess.run([sys.executable, *argv], check=False).returncode


def submit(commands: Sequence[Sequence[str]], folder, cluster: str = "auto", timeout_min: int = 240,
           gpus_per_job: int = 1, cpus_per_job: int = 4, partition: Optional[str] = None,
           extra: Optional[Dict[str, object]] = None, wait: bool = True) -> List[int]:
    """Submit every command (an argv after ``python``, e.g. ``["-m", "lcbook", "run", …]``) as
    one submitit job, and (``wait``) return their exit statuses in order.

    Args:
        commands: the command lines, each a sequence of strings.
        folder: where submitit keeps its logs and job files (one subfolder per job).
        cluster: one of :data:`CLUSTERS`.
        timeout_min: each job's time limit in minutes (a timed-out job is requeued and resumes).
        gpus_per_job, cpus_per_job: resources of each job.
        partition: the SLURM partition (``None``: the cluster's default).
        extra: more parameters for ``executor.update_parameters`` (e.g. ``{"slurm_account": …}``).
        wait: wait for the jobs and return their statuses; ``False`` returns ``[]`` at once.

    Returns:
        the exit status of each command (0 is success).

    Raises:
        RuntimeError: submitit is not installed.
        ValueError: an unknown ``cluster``, a command that is not a sequence of strings, or a
            resource below 1.
    """
    if submitit is None:
        raise RuntimeError("the submitit executor needs submitit: pip install submitit")
    if cluster not in CLUSTERS:
        raise ValueError(f"cluster must be one of {CLUSTERS}, got cluster={cluster!r}")
    cmds = [list(c) for c in commands]
    if not all(c and all(isinstance(a, str) for a in c) for c in cmds):
        raise ValueError("commands must be non-empty sequences of strings (an argv after python)")
    for name, v in (("timeout_min", timeout_min), ("cpus_per_job", cpus_per_job)):
        if not isinstance(v, int) or v < 1:
            raise ValueError(f"{name} must be an int ≥ 1, got {name}={v!r}")
    if not isinstance(gpus_per_job, int) or gpus_per_job < 0:
        raise ValueError(f"gpus_per_job must be an int ≥ 0, got gpus_per_job={gpus_per_job!r}")
    executor = submitit.AutoExecutor(folder=str(Path(folder)), cluster=None if cluster == "auto" else cluster)
    params: Dict[str, object] = {"timeout_min": timeout_min, "cpus_per_task": cpus_per_job, "name": "lcbook"}
    if executor.cluster == "slurm":
        params.update(slurm_gpus_per_node=gpus_per_job, slurm_additional_parameters={"requeue": True})
        if partition:
            params["slurm_partition"] = partition
    params.update(extra or {})
    executor.update_parameters(**params)
    jobs = executor.map_array(RunCommand(), cmds) if cmds else []
    return [int(j.result()) for j in jobs] if wait else []
