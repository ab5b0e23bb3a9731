"""A webhook receiver for a pdp control plane: the README's example. It
checks each delivery's signature with the webhook's secret, ignores a
delivery it has already seen (retries carry the same webhook-id) and prints
one line per event. The standard library's HTTP server only; behind a
proxy that terminates TLS in production.

    PDP_WEBHOOK_SECRET=whsec_... .venv/bin/python clients/python/examples/webhook_receiver.py \\
        127.0.0.1:9000

Answers 204 to a verified delivery (pdp then stops retrying it) and 400 to
anything else.
"""

from __future__ import annotations

import contextlib
import json
import os
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import ClassVar

from pdp_client import WebhookVerificationError, verify_webhook

MAX_BODY_BYTES = 1024 * 1024


class Receiver(BaseHTTPRequestHandler):
    secret: ClassVar[str] = ""
    seen: ClassVar[set[str]] = set()
    lock: ClassVar[threading.Lock] = threading.Lock()

    def do_POST(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        if length > MAX_BODY_BYTES:
            self.send_response(413)
            self.end_headers()
            return
        body = self.rfile.read(length)
        try:
            event = verify_webhook(body, self.headers, self.secret)
        except WebhookVerificationError as refused:
            self.send_response(400)
            self.end_headers()
            self.wfile.write(str(refused).encode())
            print(f"refused: {refused.reason}", flush=True)
            return
        self.send_response(204)
        self.end_headers()
        with self.lock:
            delivery_id = self.headers["webhook-id"]
            if delivery_id in self.seen:
                return  # a retry of a delivery already handled
            self.seen.add(delivery_id)
        print(event["type"], json.dumps(event["data"], sort_keys=True), flush=True)

    def log_message(self, format: str, *args: object) -> None:
        pass  # one line per event is printed above


def main() -> int:
    listen = sys.argv[1] if len(sys.argv) > 1 else "127.0.0.1:9000"
    secret = os.environ.get("PDP_WEBHOOK_SECRET") or (sys.argv[2] if len(sys.argv) > 2 else "")
    if not secret:
        print("set PDP_WEBHOOK_SECRET to the webhook's secret", file=sys.stderr)
        return 2
    host, _, port = listen.rpartition(":")
    Receiver.secret = secret
    server = ThreadingHTTPServer((host, int(port)), Receiver)
    print(f"listening on http://{host}:{server.server_port}", flush=True)
    with contextlib.suppress(KeyboardInterrupt):
        server.serve_forever()
    return 0


if __name__ == "__main__":
    sys.exit(main())
