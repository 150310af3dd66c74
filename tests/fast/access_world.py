"""A world of people, teams, grants, projects, experiments, templates and jobs, made
directly in the database (no Slurm), where what alice may see is known row by row."""
from __future__ import annotations

import itertools

from gateway.models import (
    EnvironmentVersion,
    Experiment,
    Grant,
    Job,
    Project,
    ShareLink,
    Tag,
    Team,
    TeamMember,
    Template,
    TemplateVersion,
)
from gateway.users import add_user


def grant(kind: str, obj, role: str, user=None, team=None) -> None:
    key = obj.name if kind == "license" else str(obj.id)
    Grant.create(kind=kind, object_key=key, user=user, team=team, role=role)


class World:
    """alice (not an admin) and what she may see: see each ``visible`` list."""

    def __init__(self, gw):
        gw.environment("base", public=True)
        self.gw = gw
        self.ev = EnvironmentVersion.get()
        self.alice, self.bob, self.admin = gw.alice, gw.bob, gw.admin
        self.carol = add_user("carol")
        team = Team.create(name="lab", source="local")
        TeamMember.create(team=team, user=self.alice)
        other_team = Team.create(name="elsewhere", source="local")
        TeamMember.create(team=other_team, user=self.bob)
        self.team, self.other_team = team, other_team
        # Where jobs run, and whether alice sees the jobs run there.
        mine = Project.create(name="mine", owner=self.alice)
        by_team = Project.create(name="by-team", owner=self.admin)
        grant("project", by_team, "member", team=team)
        viewed = Project.create(name="viewed", owner=self.bob)
        grant("project", viewed, "viewer", user=self.alice)  # sees its jobs, read-only
        closed = Project.create(name="closed", owner=self.bob)
        grant("project", closed, "manager", team=other_team)
        self.places = [  # (project, experiment, alice sees jobs there)
            (mine, Experiment.create(project=mine, name="e", owner=self.alice), True),
            (by_team, Experiment.create(project=by_team, name="e", owner=self.admin), True),
            (viewed, Experiment.create(project=viewed, name="e", owner=self.bob), True),
            (closed, Experiment.create(project=closed, name="e", owner=self.bob), False),
        ]
        granted = Experiment.create(project=closed, name="granted", owner=self.bob)
        grant("experiment", granted, "member", user=self.alice)
        self.places.append((closed, granted, True))
        self.runners = itertools.cycle([self.bob, self.carol, self.alice, self.admin])
        self.made_templates = 0
        self.template = self.add_template(self.admin, public=True)  # t001, what jobs run
        self.visible_jobs: set[int] = set()
        self.visible_templates: dict[str, bool] = {}  # name -> configuration shown

    def add_jobs(self, n: int) -> None:
        for i in range(n):
            user = next(self.runners)
            if i % 7 == 6:  # a plain sbatch script, on no data
                project = experiment = None
                seen = user == self.alice
            else:
                project, experiment, on_data = self.places[i % len(self.places)]
                seen = on_data or user == self.alice
            job = Job.create(kind="template", name=f"job{i}", template=self.template.tpl,
                             template_version=self.template.tv, user=user, project=project,
                             experiment=experiment, license="test-lab", slurm_account="test_lab",
                             time_limit_minutes=10, slurm_job_id=None)
            for name in ("alpha", "beta")[: i % 3]:
                Tag.create(job=job, name=name, created_by=user)
            if i % 5 == 0:
                ShareLink.create(job=job, token_hash=f"{job.id:064x}", created_by=user)
            if seen:
                self.visible_jobs.add(job.id)

    def add_template(self, owner, public=False, open_source=False):
        self.made_templates += 1
        tpl = Template.create(name=f"t{self.made_templates:03d}", owner=owner, public=public,
                              open_source=open_source, latest_version=2)
        for version in (1, 2):
            tv = TemplateVersion.create(template=tpl, version=version, language="bash",
                                        script=f"echo {version}\n", environment_version=self.ev,
                                        created_by=owner)
        return type("Made", (), {"tpl": tpl, "tv": tv})

    def add_templates(self, n: int) -> None:
        """Templates of six sorts, in turn: alice's own, public, open source and granted
        as Viewer, granted to her team as Member, granted as Viewer only, and hidden."""
        for _ in range(n):
            sort = (self.made_templates - 1) % 6
            owner = self.alice if sort == 0 else self.bob
            made = self.add_template(owner, public=sort == 1, open_source=sort == 2)
            tpl = made.tpl
            if sort in (2, 4):
                grant("template", tpl, "viewer", user=self.alice)
            if sort == 3:
                grant("template", tpl, "member", team=self.team)
            if sort == 5:
                grant("template", tpl, "owner", team=self.other_team)
                continue
            # Configuration (script, inputs...) is shown to Members and up, and to Viewers
            # of open-source templates.
            self.visible_templates[tpl.name] = sort != 4
            if sort % 2 == 0:  # a run of it, on no data: only whoever ran it sees it
                job = Job.create(kind="template", template=tpl, template_version=made.tv, user=owner,
                                 license="test-lab", slurm_account="test_lab", time_limit_minutes=10)
                if owner == self.alice:
                    self.visible_jobs.add(job.id)
