"""Real receivers for notification tests: an SMTP server (aiosmtpd, in-process) that
keeps every message, and a webhook endpoint that keeps every POST with whether its
signature holds."""
from __future__ import annotations

import hashlib
import hmac
import json
import threading
from email import message_from_bytes
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from aiosmtpd.controller import Controller

from gateway.wsgi_server import free_port


class Mailbox:
    def __init__(self):
        self.messages = []

    async def handle_DATA(self, server, session, envelope):  # noqa: N802 - aiosmtpd's name
        self.messages.append(message_from_bytes(envelope.content))
        return "250 OK"


class SmtpServer:
    """``with SmtpServer() as smtp:`` a listening server; ``smtp.messages``."""

    def __enter__(self):
        self.box = Mailbox()
        self.port = free_port()
        self.controller = Controller(self.box, hostname="127.0.0.1", port=self.port)
        self.controller.start()
        return self

    @property
    def messages(self):
        return self.box.messages

    def __exit__(self, *exc):
        self.controller.stop()


class WebhookReceiver:
    """``with WebhookReceiver() as hook:`` POSTs to ``hook.url`` are kept in
    ``hook.deliveries`` as (headers, payload, signature_ok); ``hook.fail`` makes it
    answer 503 (for retries). ``secret`` must be set to check signatures."""

    def __init__(self):
        self.deliveries: list[tuple[dict, dict, bool]] = []
        self.fail = False
        self.secret = ""

    def __enter__(self):
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):  # noqa: N802 - http.server's name
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                if receiver.fail:
                    self.send_response(503)
                    self.end_headers()
                    return
                want = "sha256=" + hmac.new(receiver.secret.encode(), body, hashlib.sha256).hexdigest()
                ok = hmac.compare_digest(want, self.headers.get("X-Gateway-Signature", ""))
                receiver.deliveries.append((dict(self.headers), json.loads(body), ok))
                self.send_response(204)
                self.end_headers()

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", free_port()), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_port}/hook"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        return self

    def __exit__(self, *exc):
        self.server.shutdown()
        self.server.server_close()
