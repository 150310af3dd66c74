"""gunicorn, started from `gateway serve`; each worker may run the poller (lease-guarded)."""
from __future__ import annotations

from gunicorn.app.base import BaseApplication


class GatewayServer(BaseApplication):
    def __init__(self, options: dict, config_path: str | None, poller: bool):
        self.options = options
        self.config_path = config_path
        self.poller = poller
        super().__init__()

    def load_config(self):
        for key, value in self.options.items():
            self.cfg.set(key, value)

    def load(self):
        from . import create_app
        from .poller import start_scheduler

        app = create_app(self.config_path)
        if self.poller:
            start_scheduler(app.extensions["gateway"])
        return app


def run(bind: str, workers: int, poller: bool, config_path: str | None) -> None:
    GatewayServer({"bind": bind, "workers": workers, "accesslog": "-", "timeout": 120},
                  config_path, poller).run()
