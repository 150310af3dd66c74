"""The `gateway` command. The commands SSH users run (status, jobs, log, run, ...)
go straight to gateway.client, which imports only the standard library: they start
as a new process each time, and click, Flask and peewee would take longer to import
than the command takes to do its work. Everything else — the server side (serve,
worker, db, users, teams, tokens, demo, check), `--help` and options before the
command — goes to the click group in gateway.admin_cli."""
from __future__ import annotations

import sys


def main(argv: list[str] | None = None) -> None:
    args = sys.argv[1:] if argv is None else list(argv)
    from .client import commands

    if args and args[0] in commands.COMMANDS:
        sys.exit(commands.main(args))
    from .admin_cli import main as server_side

    server_side(args)


if __name__ == "__main__":
    main()
