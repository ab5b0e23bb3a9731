"""A custom validator for pdp, with nothing but the standard library: it
checks the Standard Webhooks signature of each call and answers
``{"allow": ..., "message": ...}``.

Its rule: a refund (tool ``refunds``) above 100 USD (metadata ``amount_usd``)
needs a manager; everything else is allowed. Replace ``decide`` with yours.

    # HTTPS, as pdp requires (the sidecar's policy names this CA in ca_file)
    python examples/validator.py --secret whsec_... --cert server.pem --key server.key
    # plain HTTP on loopback, for `pdp serve --allow-insecure-validators`
    python examples/validator.py --secret whsec_... --port 8080

The secret is the policy's ``secret``, or ``$VALIDATOR_SECRET``.
"""

from __future__ import annotations

import argparse
import base64
import contextlib
import hashlib
import hmac
import json
import os
import ssl
import sys
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

TOLERANCE_S = 300  # refuse calls signed longer ago (or later) than this: replays
MAX_BODY = 4 * 1024 * 1024


def signing_key(secret: str) -> bytes:
    """``whsec_`` + base64 is the key's base64; any other secret is the key."""
    if secret.startswith("whsec_"):
        return base64.b64decode(secret.removeprefix("whsec_"))
    return secret.encode()


def signature_holds(key: bytes, headers: Any, body: bytes) -> bool:
    """The Standard Webhooks check: ``webhook-signature`` holds ``v1,`` and
    the base64 HMAC-SHA256 of ``{webhook-id}.{webhook-timestamp}.{body}``,
    and the timestamp is recent."""
    msg_id = headers.get("webhook-id", "")
    timestamp = headers.get("webhook-timestamp", "")
    signatures = headers.get("webhook-signature", "")
    if not (msg_id and timestamp.isdigit() and signatures):
        return False
    if abs(time.time() - int(timestamp)) > TOLERANCE_S:
        return False
    signed = f"{msg_id}.{timestamp}.".encode() + body
    expected = "v1," + base64.b64encode(hmac.new(key, signed, hashlib.sha256).digest()).decode()
    return any(hmac.compare_digest(expected, given) for given in signatures.split())


def decide(call: dict[str, Any]) -> dict[str, Any]:
    """The answer to one call: the request context pdp sent."""
    if call.get("tool") == "refunds":
        try:
            amount = float((call.get("metadata") or {}).get("amount_usd", "0"))
        except ValueError:
            return {"allow": False, "message": "amount_usd is not a number"}
        if amount > 100:
            return {"allow": False, "message": f"refunds above 100 USD need a manager ({amount:g})"}
    return {"allow": True}


def handler(key: bytes) -> type[BaseHTTPRequestHandler]:
    class Validator(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"  # keep-alive: pdp reuses its connections

        def do_POST(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            if length > MAX_BODY:
                self.answer(413, {"error": "too large"})
                return
            body = self.rfile.read(length)
            if not signature_holds(key, self.headers, body):
                self.answer(401, {"error": "bad signature"})
                return
            self.answer(200, decide(json.loads(body)))

        def answer(self, status: int, value: dict[str, Any]) -> None:
            data = json.dumps(value).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def log_message(self, format: str, *args: Any) -> None:
            pass  # one line per call is too many

    return Validator


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8443)
    parser.add_argument("--secret", default=os.environ.get("VALIDATOR_SECRET"))
    parser.add_argument("--cert", help="PEM certificate chain (HTTPS); without it, plain HTTP")
    parser.add_argument("--key", help="PEM private key of --cert")
    args = parser.parse_args()
    if not args.secret:
        parser.error("give --secret or set VALIDATOR_SECRET")
    server = ThreadingHTTPServer((args.host, args.port), handler(signing_key(args.secret)))
    scheme = "http"
    if args.cert:
        tls = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        tls.load_cert_chain(args.cert, args.key)
        # The handshake happens in the thread that serves the connection.
        server.socket = tls.wrap_socket(
            server.socket, server_side=True, do_handshake_on_connect=False
        )
        scheme = "https"
    port = server.server_address[1]
    print(f"validator listening on {scheme}://{args.host}:{port}", file=sys.stderr, flush=True)
    with contextlib.suppress(KeyboardInterrupt):
        server.serve_forever()
    return 0


if __name__ == "__main__":
    sys.exit(main())
