#!/usr/bin/env python3
"""A stand-in for a real service (Envoy, an API server) in the lifecycle examples.

Serves HTTP on --port: / and /healthz answer 200; /ready answers 503 until --ready-after
seconds have passed, then 200. With --config it first requires that file to exist (as a
proxy needs its generated config) and exits 1 without it. With --notify it sends READY=1
to $NOTIFY_SOCKET once ready. Logs one line per event on stdout and exits 0 on SIGTERM.
"""
import argparse
import http.server
import os
import signal
import socket
import sys
import threading
import time

ap = argparse.ArgumentParser()
ap.add_argument("--name", default="service")
ap.add_argument("--port", type=int, required=True)
ap.add_argument("--ready-after", type=float, default=0.0)
ap.add_argument("--config")
ap.add_argument("--notify", action="store_true")
args = ap.parse_args()


def log(msg):
    print(f"[{args.name}] {msg}", flush=True)


if args.config and not os.path.exists(args.config):
    log(f"missing config {args.config}")
    sys.exit(1)

started = time.monotonic()


def ready():
    return time.monotonic() - started >= args.ready_after


class Handler(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        if self.path == "/ready" and not ready():
            code, body = 503, b"warming up\n"
        else:
            code, body = 200, b"ok\n"
        self.send_response(code)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, fmt, *a):
        log(fmt % a)


signal.signal(signal.SIGTERM, lambda *_: (log("stopping"), os._exit(0)))
server = http.server.ThreadingHTTPServer(("127.0.0.1", args.port), Handler)
log(f"listening on 127.0.0.1:{args.port}")


def announce():
    time.sleep(args.ready_after)
    log("ready")
    path = os.environ.get("NOTIFY_SOCKET")
    if args.notify and path:
        s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        s.sendto(b"READY=1\nSTATUS=serving", path)


threading.Thread(target=announce, daemon=True).start()
server.serve_forever()
