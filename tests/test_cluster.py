"""Grids through submitit (lcbook.cluster): jobs run as processes by submitit's local cluster,
exit statuses come back in order, a pre-empted job resubmits the same command, and the command
line builds the same resumable `lcbook run` commands as the local grid."""

import pytest

submitit = pytest.importorskip("submitit")

from lcbook import cluster  # noqa: E402
from lcbook.__main__ import main as cli  # noqa: E402


def test_jobs_run_through_submitits_local_cluster_and_report_their_status(tmp_path):
    marker = tmp_path / "ran.txt"
    ok = ["-c", f"open({str(marker)!r}, 'w').write('yes')"]
    bad = ["-c", "import sys; sys.exit(3)"]
    assert cluster.submit([ok, bad], tmp_path / "jobs", cluster="local", timeout_min=5, cpus_per_job=1) == [0, 3]
    assert marker.read_text() == "yes"


def test_a_preempted_job_is_resubmitted_with_the_same_command():
    argv = ["-m", "lcbook", "run", "lenet300", "q", "k=2", "--profile", "quick", "--seed", "0"]
    again = cluster.RunCommand().checkpoint(argv)
    assert isinstance(again, submitit.helpers.DelayedSubmission) and list(again.args[0]) == argv


def test_bad_submissions_are_refused_before_anything_is_submitted(tmp_path):
    with pytest.raises(ValueError, match="cluster must be one of"):
        cluster.submit([["-c", "pass"]], tmp_path, cluster="kubernetes")
    with pytest.raises(ValueError, match="sequences of strings"):
        cluster.submit([[]], tmp_path, cluster="local")
    with pytest.raises(ValueError, match="timeout_min"):
        cluster.submit([["-c", "pass"]], tmp_path, cluster="local", timeout_min=0)
    assert not any(tmp_path.iterdir())


def test_the_grid_command_submits_resumable_run_commands(monkeypatch, tmp_path, capsys):
    seen = {}

    def fake_submit(commands, folder, **kw):
        seen.update(commands=commands, folder=folder, **kw)
        return [0] * (len(commands) - 1) + [7]

    monkeypatch.setattr(cluster, "submit", fake_submit)
    code = cli(["grid", "--models", "resnet20", "--combos", "q", "qp", "--budgets", "k=3", "k=3,fraction=0.7",
                "--profile", "quick", "--executor", "submitit", "--cluster", "local", "--submitit-folder",
                str(tmp_path), "--timeout-min", "30"])
    assert code == 1 and "FAILED (7)" in capsys.readouterr().err
    assert seen["cluster"] == "local" and seen["timeout_min"] == 30 and str(seen["folder"]) == str(tmp_path)
    assert seen["commands"] == [
        ["-m", "lcbook", "run", "resnet20", "q", "k=3", "--profile", "quick", "--seed", "0"],
        ["-m", "lcbook", "run", "resnet20", "qp", "k=3,fraction=0.7", "--profile", "quick", "--seed", "0"]]
