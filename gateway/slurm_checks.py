"""Checks of the gateway config that only Slurm can answer (``gateway check``)."""
from __future__ import annotations

from .context import Context


def check_against_slurm(ctx: Context) -> list[str]:
    problems = []
    partitions = ctx.slurm.partitions()
    for mt in ctx.config.machine_types.values():
        part = partitions.get(mt.partition)
        if part is None:
            problems.append(f"machine_types[{mt.name}].partition: Slurm has no partition "
                            f"{mt.partition!r} (has {sorted(partitions)})")
            continue
        if mt.gpus and f"gpu:{mt.gpu_type}" not in part["gres"] and mt.gpu_type:
            problems.append(f"machine_types[{mt.name}].gpu_type: partition {mt.partition!r} "
                            f"offers GRES {part['gres'] or 'none'}, not gpu:{mt.gpu_type}")
    accounts = ctx.slurm.accounts()
    for lic in ctx.config.licenses.values():
        if lic.slurm_account not in accounts:
            problems.append(f"licenses[{lic.name}].slurm_account: Slurm has no account "
                            f"{lic.slurm_account!r}")
    return problems
