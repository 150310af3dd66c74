"""Reconciliation on a FakeSlurm: each licence's charges this period against accounting,
job by job. On the real Slurm: tests/integration/test_budgets_on_slurm.py."""
from gateway import reconcile
from gateway.models import Job


def test_charges_equal_accounting_and_a_difference_is_named(fake_gw_ready):
    gw = fake_gw_ready
    jobs = [gw.run("tpl", machine_type=mt) for mt in ("small", "double", "gpu1")]
    for job in jobs:
        sid = gw.ok("GET", f"/jobs/{job['id']}")["slurm_job_id"]
        gw.slurm.finish(sid, elapsed=100)
    gw.tick()
    found = {t.license: t for t in reconcile.reconcile(gw.ctx)}
    lab = found["test-lab"]
    assert (lab.jobs, lab.gateway_cpu_s, lab.gateway_gpu_s) == (3, 400, 100)
    assert (lab.slurm_cpu_s, lab.slurm_gpu_s) == (400, 100) and lab.differences == []
    assert lab.line().endswith(": equal") and found["tiny-lab"].jobs == 0
    # One job charged wrongly (by hand, say): found, to the second.
    Job.update(cpu_seconds=Job.cpu_seconds + 1).where(Job.id == jobs[1]["id"]).execute()
    lab = {t.license: t for t in reconcile.reconcile(gw.ctx)}["test-lab"]
    sid = gw.ok("GET", f"/jobs/{jobs[1]['id']}")["slurm_job_id"]
    assert lab.differences == [f"job {jobs[1]['id']} (Slurm {sid}): "
                               f"gateway 201 CPU-s 0 GPU-s, Slurm 200 CPU-s 0 GPU-s"]
