#!/usr/bin/env python3
"""The red-team test's servers, on this machine's loopback only: what the VM reaches through
qemu's user-mode network at the host address (10.0.2.2 -> 127.0.0.1).

  redteam_servers.py LOG CERT KEY

HTTP on 80 and 8080 (a non-standard port), HTTPS on 443, plain TCP on 9999 (another port of
the host), UDP on 53 (a resolver the profile does not name) and 5353. Every request, connection
or datagram is appended to LOG as one JSON line, so the test can assert what never arrived.
Prints "ready" once every socket is bound; a port already taken is an error.
"""

import http.server
import json
import socket
import socketserver
import ssl
import sys
import threading

LOG, CERT, KEY = sys.argv[1:4]
lock = threading.Lock()


def record(**event):
    with lock, open(LOG, "a", encoding="utf-8") as f:
        f.write(json.dumps(event) + "\n")


class Handler(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        record(server=self.server.label, host=self.headers.get("Host", ""), path=self.path)
        body = f"redteam {self.server.label} {self.path}\n".encode()
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


class HTTPServer(socketserver.ThreadingMixIn, http.server.HTTPServer):
    daemon_threads = True
    allow_reuse_address = True


def http_server(port, label, tls=False):
    server = HTTPServer(("127.0.0.1", port), Handler)
    server.label = label
    if tls:
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(CERT, KEY)
        server.socket = context.wrap_socket(server.socket, server_side=True)
    return server.serve_forever


def tcp_server(port, label):
    sock = socket.socket()
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", port))
    sock.listen()

    def serve():
        while True:
            conn, _ = sock.accept()
            record(server=label)
            conn.close()

    return serve


def udp_server(port, label):
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.bind(("127.0.0.1", port))

    def serve():
        while True:
            data, _ = sock.recvfrom(4096)
            record(server=label, bytes=len(data))

    return serve


def main():
    try:
        loops = [
            http_server(80, "http"),
            http_server(8080, "http-8080"),
            http_server(443, "https", tls=True),
            tcp_server(9999, "tcp-9999"),
            udp_server(53, "udp-53"),
            udp_server(5353, "udp-5353"),
        ]
    except OSError as e:
        print(f"redteam servers: cannot bind: {e}", file=sys.stderr)
        sys.exit(1)
    for loop in loops:
        threading.Thread(target=loop, daemon=True).start()
    print("ready", flush=True)
    threading.Event().wait()


if __name__ == "__main__":
    main()
