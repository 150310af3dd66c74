"""HPC batch gateway over Slurm."""
from __future__ import annotations


def create_app(config=None, context=None):
    """Flask application factory. ``config`` is a Config, a path, or None ($GATEWAY_CONFIG)."""
    from flask import Flask

    from . import config as config_mod
    from .context import Context
    from .db import bind, database
    from .web import init_app

    if config is None or isinstance(config, (str, bytes)) or hasattr(config, "__fspath__"):
        config = config_mod.load(config)
    ctx = context or Context.from_config(config)
    app = Flask(__name__)
    app.config["SECRET_KEY"] = config.secret_key
    app.config["MAX_CONTENT_LENGTH"] = ctx.max_upload_bytes
    # Session cookies: not sent on cross-site subrequests, never readable by scripts,
    # and only over https when the gateway is served over https.
    app.config["SESSION_COOKIE_SAMESITE"] = "Lax"
    app.config["SESSION_COOKIE_HTTPONLY"] = True
    app.config["SESSION_COOKIE_SECURE"] = config.public_url.startswith("https://")
    app.extensions["gateway"] = ctx
    if database.obj is None or context is None:
        bind(config.database_url)

    @app.before_request
    def _connect():
        database.connect(reuse_if_open=True)

    @app.teardown_request
    def _close(exc):
        if not database.is_closed():
            database.close()

    init_app(app)
    return app
