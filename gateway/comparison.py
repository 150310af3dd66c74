"""Hand-picked runs of one Job Template side by side: the results table of a sweep,
for any jobs a person may see (picked in the Jobs table, or named on the command line).

The rows are the jobs in the order given. The columns are the inputs whose values
differ between them (an input with one value in every run is shown once, as "same in
all", instead of as a column), the OUT_ values (the template's declared outputs first,
then any other a job set), and status, exit code and charges. Runs of different
versions of the template compare: the version is a column, and an input one version
lacks simply differs.

A job the person may not see is reported exactly as a job that does not exist, so
comparing cannot be used to learn which job numbers exist.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from peewee import JOIN

from . import access, results_table
from .context import Context
from .errors import NotFound, ValidationError
from .hours import hours
from .models import Job, Template, TemplateVersion, User
from .validation import parse_id

MIN_COMPARED = 2
# One table a person can read (and one SQL query with an IN list every backend takes).
MAX_COMPARED = 500
FIELD = "ids"


@dataclass(frozen=True)
class Comparison:
    template: Template
    jobs: list[Job]
    # Inputs with one value in every run: name -> that value.
    same: dict[str, Any]
    # Inputs whose values differ between the runs (columns), then the OUT_ names.
    inputs: list[str]
    outputs: list[str]

    @property
    def columns(self) -> list[str]:
        return ["job", "version", "status", *self.inputs, *self.outputs, "exit_code", "cpu_hours",
                "gpu_hours"]

    def row(self, j: Job) -> list[Any]:
        return [j.id, j.template_version.version if j.template_version_id else None, j.status,
                *(j.inputs.get(n) for n in self.inputs), *(j.output_variables.get(n) for n in self.outputs),
                j.exit_code, hours(j.cpu_seconds), hours(j.gpu_seconds)]

    def rows(self) -> list[list[Any]]:
        return [self.row(j) for j in self.jobs]


def parse_ids(raw: str | list[str] | None) -> list[int]:
    """The job ids of ``raw`` ("12,13,14", or several such texts: a form's checkboxes
    each send one), in the order given. A job named twice is compared once (its first
    place kept); anything that is not a job id is refused, naming it."""
    texts = [raw] if isinstance(raw, str) else list(raw or [])
    pieces = [p.strip() for t in texts for p in str(t).split(",") if p.strip()]
    # Counted before anything else is done with them: a huge list costs nothing more.
    if len(pieces) > MAX_COMPARED:
        raise ValidationError(f"compare at most {MAX_COMPARED} jobs at once; {len(pieces)} were given", FIELD)
    ids: list[int] = []
    for piece in pieces:
        job_id = parse_id(piece)
        if job_id is None:
            shown = piece if len(piece) <= 24 else piece[:24] + "…"
            raise ValidationError(f"{shown!r} is not a job number: give job numbers such as 12,13", FIELD)
        if job_id not in ids:
            ids.append(job_id)
    if len(ids) < MIN_COMPARED:
        raise ValidationError(f"pick at least {MIN_COMPARED} different jobs to compare"
                              + (f" (only job {ids[0]} was given)" if ids else ""), FIELD)
    return ids


def _not_found(missing: list[int]) -> NotFound:
    if len(missing) == 1:
        return NotFound(f"job {missing[0]} not found", FIELD)
    shown = ", ".join(str(i) for i in missing[:10])
    more = f" and {len(missing) - 10} more" if len(missing) > 10 else ""
    return NotFound(f"jobs {shown}{more} not found", FIELD)


def _load(user: User, ids: list[int]) -> list[Job]:
    """The jobs of ``ids`` in that order, with their template and version, in one query;
    any of them ``user`` may not see is missing, as one that does not exist is."""
    query = (Job.select(Job, Template, TemplateVersion)
             .join(Template, JOIN.LEFT_OUTER, on=(Job.template == Template.id)).switch(Job)
             .join(TemplateVersion, JOIN.LEFT_OUTER, on=(Job.template_version == TemplateVersion.id))
             .where(Job.id.in_(ids)))
    # The job.view rule of the access table, in SQL: one query however many jobs.
    found = {j.id: j for j in access.visible_jobs(user, query)}
    missing = [i for i in ids if i not in found]
    if missing:
        raise _not_found(missing)
    return [found[i] for i in ids]


def _one_template(rows: list[Job]) -> Template:
    first = rows[0]
    for j in rows:
        if j.template_id is None:
            raise ValidationError(f"job {j.id} is a plain sbatch script, not a run of a Job Template: "
                                  f"only runs of one template compare", FIELD)
    for j in rows[1:]:
        if j.template_id != first.template_id:
            raise ValidationError(f"jobs {first.id} and {j.id} are runs of different templates "
                                  f"({first.template.name}, {j.template.name})", FIELD)
    return first.template


def _declared(rows: list[Job], key: str) -> list[str]:
    """The names the rows' template versions declare under ``key`` ("inputs" or
    "outputs"): the newest version's in its order, then what older ones add."""
    versions = {j.template_version_id: j.template_version for j in rows if j.template_version_id}
    names: list[str] = []
    for v in sorted(versions.values(), key=lambda v: v.version, reverse=True):
        names += [s["name"] for s in (getattr(v, key) or []) if s.get("name") not in names]
    return names


def _union(declared: list[str], sets: list[dict]) -> list[str]:
    names = list(declared)
    for values in sets:
        names += [k for k in values if k not in names]
    return names


def compare(ctx: Context, user: User, job_ids: str | list[str] | None) -> Comparison:
    """The runs ``job_ids`` names (see ``parse_ids``) side by side; every one must be a
    job ``user`` may see, and all runs of one template."""
    rows = _load(user, parse_ids(job_ids))
    template = _one_template(rows)
    same: dict[str, Any] = {}
    differ: list[str] = []
    for name in _union(_declared(rows, "inputs"), [j.inputs for j in rows]):
        values = [j.inputs.get(name) for j in rows]
        if all(v is None for v in values):
            continue
        if all(name in j.inputs for j in rows) and all(v == values[0] for v in values):
            same[name] = values[0]
        else:
            differ.append(name)
    outputs = _union(_declared(rows, "outputs"), [j.output_variables for j in rows])
    return Comparison(template=template, jobs=rows, same=same, inputs=differ, outputs=outputs)


def comparison_dict(c: Comparison) -> dict:
    """What the API answers: the table as columns and rows (values in column order)."""
    return {"template": {"id": c.template.id, "name": c.template.name},
            "jobs": [j.id for j in c.jobs], "same": c.same, "inputs": c.inputs, "outputs": c.outputs,
            "columns": c.columns, "rows": c.rows()}


def comparison_csv(c: Comparison) -> str:
    """The table as CSV (cells a spreadsheet would run as formulas kept as text), with
    the inputs that are the same in every run as columns too: the file stands alone."""
    same = list(c.same)
    return results_table.csv_text([*c.columns, *same],
                                  ([*c.row(j), *(c.same[n] for n in same)] for j in c.jobs))
