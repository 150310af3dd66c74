"""`gateway-sbatch`: submit a plain batch script through the gateway, charged to a licence.

Used like sbatch on a login node; the job is tracked, its log kept and its CPU/GPU
hours charged like any portal job. Prints sbatch's own "Submitted batch job N" line
so scripts that parse it keep working.
"""
from __future__ import annotations

import os
import sys
from pathlib import Path

import click

from .commands import _call, _client, _wait


@click.command(context_settings={"help_option_names": ["-h", "--help"]})
@click.argument("script", type=click.Path(exists=True, dir_okay=False, allow_dash=True))
@click.option("-L", "--license", "license_", envvar="GATEWAY_LICENSE", required=True,
              help="Licence to charge (or $GATEWAY_LICENSE)")
@click.option("-t", "--time", "time_limit", default=None, help="Time limit (overrides #SBATCH --time)")
@click.option("-J", "--job-name", default=None)
@click.option("-p", "--partition", default=None)
@click.option("--project", default=None)
@click.option("--experiment", default=None)
@click.option("--parsable", is_flag=True, help="Print only the Slurm job id")
@click.option("--wait", is_flag=True, help="Wait for the job to end; exit 1 if it failed")
def main(script, license_, time_limit, job_name, partition, project, experiment, parsable, wait):
    """Submit SCRIPT to Slurm through the gateway."""
    text = sys.stdin.read() if script == "-" else Path(script).read_text()
    payload = {"script": text, "license": license_, "workdir": os.getcwd()}
    if time_limit:
        from ..errors import ValidationError
        from ..sbatch_directives import parse_time_limit
        try:
            payload["time_limit_minutes"] = parse_time_limit(time_limit, "--time")
        except ValidationError as e:
            raise click.BadParameter(e.message, param_hint="--time") from None
    for key, value in (("job_name", job_name), ("partition", partition),
                       ("project", project), ("experiment", experiment)):
        if value:
            payload[key] = value
    client = _client()
    job = _call(client.post, "/jobs/sbatch", payload)
    if parsable:
        click.echo(job["slurm_job_id"])
    else:
        click.echo(f"Submitted batch job {job['slurm_job_id']} (gateway job {job['id']})")
    if wait:
        sys.exit(_wait(client, job["id"]))


if __name__ == "__main__":
    main()
