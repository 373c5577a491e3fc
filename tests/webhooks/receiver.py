"""A webhook receiver for the end-to-end tests: a real HTTP server on loopback that
records every request it gets, the way a CI system or a bot sees GitHub's deliveries.

    python receiver.py --record FILE [--secret S] [--fail-first N] [--port P]

- listens on 127.0.0.1 (port 0 unless `--port`: a test that wants the receiver down
  first picks a port, points the hook at it and starts the receiver there later), then
  prints `LISTENING <port>` on stdout, flushed, once it accepts connections;
- appends one JSON line per request to FILE, written and flushed before the answer
  goes out (so a delivery the node saw answered is on disk): `method`, `path`,
  `headers` (names lower-cased), `body` (the raw body as text; bytes that are not
  UTF-8 kept with `surrogateescape`), `body_json` (the parsed payload: the body itself
  for `application/json`, the `payload` field for GitHub's form content type
  `application/x-www-form-urlencoded`, or null), `received_at` (time.time()),
  `signature_ok` (X-Hub-Signature-256 equals `sha256=` + hex HMAC-SHA256 of the raw
  body under the secret, compared in constant time; false without a secret or a
  header) and `status` (what this receiver answered);
- answers 500 to the first N requests, 200 after (`--fail-first`), so a test can watch
  the sender retry;
- stops cleanly on SIGTERM or SIGINT (exit status 0).

Standard library only, so any python3 runs it.
"""

from __future__ import annotations

import argparse
import hashlib
import hmac
import json
import signal
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs


def signature_ok(secret: str | None, body: bytes, header: str | None) -> bool:
    if not secret or not header:
        return False
    expected = "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()
    return hmac.compare_digest(expected.encode(), header.encode("utf-8", "surrogateescape"))


def parse_payload(content_type: str, body: bytes):
    """The delivery's JSON payload, or None when it does not parse."""
    media = content_type.split(";", 1)[0].strip().lower()
    try:
        if media == "application/json":
            return json.loads(body)
        if media == "application/x-www-form-urlencoded":
            fields = parse_qs(body.decode("utf-8"), keep_blank_values=True, strict_parsing=True)
            values = fields.get("payload")
            if list(fields) != ["payload"] or values is None or len(values) != 1:
                return None
            return json.loads(values[0])
    except (ValueError, UnicodeDecodeError):
        return None
    return None


class Receiver(ThreadingHTTPServer):
    daemon_threads = True
    # Answers may be slower than one per accept under load; never refuse a sender.
    request_queue_size = 128

    def __init__(self, port: int, secret: str | None, record: str, fail_first: int):
        super().__init__(("127.0.0.1", port), Handler)
        self.secret = secret
        self.record = record
        self.fail_first = fail_first
        self.seen = 0
        self.lock = threading.Lock()


class Handler(BaseHTTPRequestHandler):
    server: Receiver
    protocol_version = "HTTP/1.1"
    # The answer's head and body are separate writes: without TCP_NODELAY, Nagle and
    # the sender's delayed ACK hold each answer ~40 ms.
    disable_nagle_algorithm = True

    def _body(self) -> bytes:
        if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
            out = b""
            while True:
                size = int(self.rfile.readline().split(b";", 1)[0].strip(), 16)
                if size == 0:
                    while self.rfile.readline() not in (b"\r\n", b"\n", b""):
                        pass
                    return out
                out += self.rfile.read(size)
                self.rfile.readline()
        return self.rfile.read(int(self.headers.get("Content-Length") or 0))

    def _handle(self) -> None:
        body = self._body()
        received_at = time.time()
        headers = {k.lower(): v for k, v in self.headers.items()}
        server = self.server
        with server.lock:
            status = 500 if server.seen < server.fail_first else 200
            server.seen += 1
            line = {
                "method": self.command,
                "path": self.path,
                "headers": headers,
                "body": body.decode("utf-8", "surrogateescape"),
                "body_json": parse_payload(headers.get("content-type", ""), body),
                "received_at": received_at,
                "signature_ok": signature_ok(server.secret, body, headers.get("x-hub-signature-256")),
                "status": status,
            }
            with open(server.record, "a", encoding="utf-8", errors="surrogateescape") as f:
                f.write(json.dumps(line) + "\n")
                f.flush()
        answer = b'{"ok":true}' if status == 200 else b'{"ok":false}'
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(answer)))
        self.end_headers()
        self.wfile.write(answer)

    do_POST = do_PUT = do_PATCH = do_GET = do_DELETE = _handle

    def log_message(self, format, *args):  # noqa: A002 - the base class's name
        pass  # the record is the log


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--record", required=True, help="append one JSON line per request here")
    parser.add_argument("--secret", default=None, help="the hook's secret, to check signatures")
    parser.add_argument("--fail-first", type=int, default=0, help="answer 500 to this many requests first")
    parser.add_argument("--port", type=int, default=0, help="listen on this port (0: any free one)")
    args = parser.parse_args()

    server = Receiver(args.port, args.secret, args.record, args.fail_first)

    def stop(_signum, _frame):
        # shutdown() waits for serve_forever to return, so call it off the main thread.
        threading.Thread(target=server.shutdown, daemon=True).start()

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    print(f"LISTENING {server.server_address[1]}", flush=True)
    try:
        server.serve_forever(poll_interval=0.1)
    finally:
        server.server_close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
