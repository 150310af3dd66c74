"""The `gateway` command's server side, in click: serve, worker, db, users, teams,
tokens, demo, check. `gateway.cli` sends the commands SSH users run to gateway.client
before this module (and click) is loaded; they are listed here too, so `gateway
--help` shows them and `gateway -v status 1` still works."""
from __future__ import annotations

import logging
import os
import signal
import sys

import click

from .client import commands as client_commands
from .errors import ConfigError, GatewayError


def _setup(config_path: str | None = None, service: str = ""):
    """The context for a command. ``service`` commands (serve, worker, db upgrade, demo)
    make and use the gateway's state: they run as its service user only, with private
    files, and refuse to start while that state is open to others."""
    from . import config as config_mod
    from . import private_state
    from .context import Context
    from .db import bind

    if service:
        why = private_state.refuse_root(service)
        if why:
            raise click.ClickException(why)
        os.umask(private_state.UMASK)
    try:
        cfg = config_mod.load(config_path)
    except ConfigError as e:
        raise click.ClickException(f"configuration error: {e}") from None
    if service in ("serve", "worker"):
        found = private_state.problems(cfg)
        if found:
            raise click.ClickException("the gateway's state is not private:\n  " + "\n  ".join(found))
    bind(cfg.database_url)
    return Context.from_config(cfg)


def _fail_on_gateway_error(fn, *args, **kwargs):
    try:
        return fn(*args, **kwargs)
    except GatewayError as e:
        raise click.ClickException(f"{e.field}: {e.message}" if e.field else e.message) from None


@click.group(name="gateway")
@click.option("-v", "--verbose", is_flag=True)
def main(verbose):
    """HPC batch gateway over Slurm."""
    logging.basicConfig(level=logging.DEBUG if verbose else logging.INFO,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")


@main.group()
def db():
    """Database schema."""


@db.command("upgrade")
@click.option("--config", "config_path", default=None)
def db_upgrade(config_path):
    """Apply pending migrations."""
    from .migrate import upgrade

    _setup(config_path, service="db upgrade")
    done = upgrade()
    click.echo(f"applied {len(done)} migration(s): {', '.join(done)}" if done else "schema is up to date")


@main.group()
def users():
    """Local user accounts."""


@users.command("add")
@click.argument("username")
@click.option("--admin", is_flag=True)
@click.option("--config", "config_path", default=None)
def users_add(username, admin, config_path):
    from .users import add_user

    _setup(config_path)
    user = _fail_on_gateway_error(add_user, username, is_admin=admin)
    click.echo(f"user {user.username} created" + (" (admin)" if admin else ""))


@users.command("passwd")
@click.argument("username")
@click.option("--password-stdin", is_flag=True, help="Read the password from standard input")
@click.option("--config", "config_path", default=None)
def users_passwd(username, password_stdin, config_path):
    """Set the password of a local account (LDAP people use their directory password)."""
    from .auth.login import set_local_password
    from .users import get_user

    _setup(config_path)
    user = _fail_on_gateway_error(get_user, username)
    if user.source != "local":
        raise click.ClickException(f"{username} is an LDAP account; its password lives in the directory")
    password = sys.stdin.readline().rstrip("\n") if password_stdin else \
        click.prompt("Password", hide_input=True, confirmation_prompt=True)
    _fail_on_gateway_error(set_local_password, user, password)
    click.echo(f"password of {username} set")


@main.group()
def teams():
    """Local teams (LDAP groups become teams by themselves at login)."""


def _echo_team(team) -> None:
    from .teams import member_names

    click.echo(f"team {team.name}: {', '.join(member_names(team)) or 'no members'}")


@teams.command("add")
@click.argument("name")
@click.option("--member", "members", multiple=True, help="A user name; repeat for more")
@click.option("--config", "config_path", default=None)
def teams_add(name, members, config_path):
    """Make local team NAME (if new) and add people to it."""
    from . import teams as teams_mod
    from .users import get_user

    _setup(config_path)
    people = [_fail_on_gateway_error(get_user, m) for m in members]
    team = _fail_on_gateway_error(teams_mod.ensure_team, name)
    for person in people:
        teams_mod.add_member(team, person)
    _echo_team(team)


@teams.command("remove")
@click.argument("name")
@click.option("--member", "members", multiple=True, required=True,
              help="A user name; repeat for more")
@click.option("--config", "config_path", default=None)
def teams_remove(name, members, config_path):
    """Take people out of team NAME."""
    from . import teams as teams_mod
    from .users import get_user

    _setup(config_path)
    team = _fail_on_gateway_error(teams_mod.get_team, name)
    for person in [_fail_on_gateway_error(get_user, m) for m in members]:
        teams_mod.remove_member(team, person)
    _echo_team(team)


@teams.command("list")
@click.option("--config", "config_path", default=None)
def teams_list(config_path):
    """Every team, where it comes from, and its members."""
    from .teams import list_teams, team_dict

    _setup(config_path)
    for t in list_teams(None):
        d = team_dict(t)
        click.echo(f"{d['name']} ({d['source']}): {', '.join(d['members']) or 'no members'}")


@main.group()
def tokens():
    """API tokens."""


@tokens.command("create")
@click.argument("username")
@click.option("--name", default="cli", help="A label for the token")
@click.option("--config", "config_path", default=None)
def tokens_create(username, name, config_path):
    """Create an API token for USERNAME and print it (shown only once)."""
    from .users import create_token, get_user

    _setup(config_path)
    user = _fail_on_gateway_error(get_user, username)
    click.echo(create_token(user, name))


@main.command("serve")
@click.option("--bind", "bind_addr", default="127.0.0.1:8080", show_default=True)
@click.option("--workers", default=2, show_default=True)
@click.option("--poller/--no-poller", default=True, show_default=True,
              help="Also run the accounting poller (one process wins the lease)")
@click.option("--config", "config_path", default=None)
def serve(bind_addr, workers, poller, config_path):
    """Serve the portal and API with gunicorn."""
    from .wsgi_server import run

    _setup(config_path, service="serve")  # fail early on a bad config, before forking
    run(bind_addr, workers, poller, config_path)


@main.command("worker")
@click.option("--once", is_flag=True, help="Run one poll tick and exit")
@click.option("--config", "config_path", default=None)
def worker(once, config_path):
    """Run the accounting poller."""
    from .poller import start_scheduler, tick

    ctx = _setup(config_path, service="worker")
    if once:
        result = _fail_on_gateway_error(tick, ctx)
        click.echo(f"unfinished={result.unfinished} updated={result.updated} "
                   f"finalized={result.finalized} slurm_calls={result.slurm_calls}")
        return
    # SIGTERM (systemd stop) becomes a normal exit, so the poller lease is released.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    start_scheduler(ctx, blocking=True)


@main.command("check")
@click.option("--fix", is_flag=True, help="Correct folder access, Slurm associations and budget limits")
@click.option("--config", "config_path", default=None)
def check(fix, config_path):
    """Check the config against Slurm (partitions, GPU types, accounts), the privacy of
    the gateway's state, folder access on disk and Slurm associations against the
    role model, and Slurm's account limits against the licence budgets; with --fix,
    correct the last three."""
    from . import budgets, disk_access, private_state, slurm_associations
    from .slurm_checks import check_against_slurm

    ctx = _setup(config_path, service="check")
    problems = _fail_on_gateway_error(check_against_slurm, ctx)
    problems += private_state.problems(ctx.config)
    if ctx.config.slurm.submit_via == "helper":
        from .slurm.warm_helpers import install_problems

        problems += install_problems(ctx.config.slurm.submit_helper)
    drift = [str(d) for d in disk_access.sync_all(ctx.config, fix=fix)]
    drift += [str(d) for d in _fail_on_gateway_error(slurm_associations.sync, ctx.config, ctx.slurm,
                                                      fix=fix)]
    drift += _fail_on_gateway_error(budgets.drift, ctx, fix=fix)
    if not fix:
        problems += drift
    for p in problems:
        click.echo(f"problem: {p}", err=True)
    for d in drift if fix else []:
        click.echo(f"fixed: {d}")
    if problems:
        sys.exit(1)
    click.echo("configuration matches Slurm; state is private; folder access and "
               "associations match the role model; account limits match the budgets")


@main.command("reconcile")
@click.option("--config", "config_path", default=None)
def reconcile_command(config_path):
    """Compare each licence's charges this period with Slurm's accounting, job by job;
    exit 1 on any difference."""
    from .reconcile import reconcile

    ctx = _setup(config_path, service="reconcile")
    found = _fail_on_gateway_error(reconcile, ctx)
    for totals in found:
        click.echo(totals.line())
        for difference in totals.differences:
            click.echo(f"  differs: {difference}")
    if any(t.differences for t in found):
        sys.exit(1)


@main.command("demo")
@click.option("--config", "config_path", default=None)
def demo(config_path):
    """Load demo data (user, environment, templates, project) and print a token."""
    from .demo import load_demo

    ctx = _setup(config_path, service="demo")
    token = _fail_on_gateway_error(load_demo, ctx)
    click.echo(token)


def _client_command(cmd: client_commands.Command) -> click.Command:
    """A click command that hands its arguments to the client command of that name."""
    def forward(args: tuple[str, ...]) -> None:
        sys.exit(client_commands.main([cmd.name, *args]))

    return click.Command(cmd.name, callback=forward, help=cmd.summary, add_help_option=False,
                         context_settings={"ignore_unknown_options": True},
                         params=[click.Argument(["args"], nargs=-1, type=click.UNPROCESSED)])


for _cmd in client_commands.COMMANDS.values():
    main.add_command(_client_command(_cmd))
