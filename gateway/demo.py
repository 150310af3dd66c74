"""Demo data for a fresh gateway: a user with a token, an environment, two templates,
a project with raw data. Idempotent: running it again only prints a new token."""
from __future__ import annotations

from . import data, environments, grants, job_templates, teams
from .context import Context
from .models import Environment, Experiment, Grant, Project, Template, User
from .users import add_user, create_token

BASH_SCRIPT = """\
# Count the lines of every file under the chosen data path.
echo "analysing $DC_DATA with threshold $DC_THRESHOLD using $JOB_CPUS CPUs"
source "$JOB_TEMPLATE_DIR/helpers.sh"
total=0
while IFS= read -r -d '' f; do
    n=$(wc -l < "$f")
    echo "$f: $n lines"
    total=$((total + n))
done < <(find "$DC_DATA" -type f -print0)
summarise "$total" > "$JOB_OUTPUT_DIR/summary.txt"
OUT_TOTAL_LINES=$total
OUT_LABEL="$DC_LABEL"
"""

PYTHON_SCRIPT = """\
import os, statistics
values = [float(v) for v in os.environ["DC_VALUES"].split(",")]
mean = statistics.mean(values)
with open(os.path.join(os.environ["JOB_OUTPUT_DIR"], "stats.txt"), "w") as f:
    f.write(f"n={len(values)} mean={mean}\\n")
OUT_MEAN = mean
OUT_COUNT = len(values)
"""


def load_demo(ctx: Context) -> str:
    user = User.get_or_none(User.username == "demo") or add_user("demo", is_admin=True,
                                                                  display_name="Demo Admin")
    if not Environment.get_or_none(Environment.name == "base"):
        env = environments.create_environment(ctx, user, {
            "name": "base", "public": True,
            "description": "The cluster's system tools (bash, coreutils, python3)."})
        environments.add_version(ctx, user, env, {"version": "1", "setup": 'export LC_ALL=C.UTF-8'})
    if not Template.get_or_none(Template.name == "line-count"):
        tpl = job_templates.create_template(ctx, user, {
            "name": "line-count", "language": "bash", "environment": "base",
            "description": "Counts lines of the files under a data path.",
            "script": BASH_SCRIPT,
            "inputs": [
                {"name": "DC_DATA", "type": "path", "description": "Folder to analyse"},
                {"name": "DC_THRESHOLD", "type": "integer", "default": 10,
                 "description": "Lines above which a file counts as long"},
                {"name": "DC_LABEL", "type": "string", "default": "demo run",
                 "description": "Free text kept with the results", "advanced": True},
            ],
            "outputs": [{"name": "OUT_TOTAL_LINES", "description": "Lines in all files"},
                        {"name": "OUT_LABEL", "description": "The label given"}],
        })
        helpers = b'summarise() { echo "total lines: $1"; }\n'
        job_templates.add_files(ctx, user, tpl, [("helpers.sh", helpers)])
    if not Template.get_or_none(Template.name == "mean-value"):
        job_templates.create_template(ctx, user, {
            "name": "mean-value", "language": "python", "environment": "base",
            "python_executable": "python3", "description": "Mean of a list of numbers.",
            "script": PYTHON_SCRIPT,
            "inputs": [{"name": "DC_VALUES", "type": "string", "default": "1,2,3,4",
                        "description": "Comma-separated numbers"}],
            "outputs": [{"name": "OUT_MEAN", "description": "Arithmetic mean"},
                        {"name": "OUT_COUNT", "description": "How many numbers"}],
        })
    for name in ("line-count", "mean-value"):
        tpl = Template.get(Template.name == name)
        if not tpl.public:
            job_templates.update_settings(ctx, user, tpl, {"public": True, "open_source": True})
    project = Project.get_or_none(Project.name == "demo") or data.create_project(ctx, user, {"name": "demo"})
    # Everyone in the directory's all-staff group works on the demo project (the team
    # exists before anyone logged in, so the grant can be made now).
    team = teams.ensure_team("all-staff", teams.LDAP)
    if not Grant.select().where(Grant.kind == "project", Grant.object_key == str(project.id),
                                Grant.team == team).exists():
        grants.grant(ctx, user, project, {"team": team.name, "role": "member"})
    exp = Experiment.get_or_none(Experiment.project == project, Experiment.name == "exp1") or \
        data.create_experiment(ctx, user, project, {"name": "exp1"})
    raw = data.experiment_dir(ctx.config, exp) / "raw"
    raw.mkdir(parents=True, exist_ok=True)
    for i in range(3):
        (raw / f"sample{i}.txt").write_text("".join(f"reading {j}\n" for j in range(5 * (i + 1))))
    return create_token(user, "demo")
