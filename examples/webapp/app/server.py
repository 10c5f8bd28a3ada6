#!/usr/bin/env python3
"""The example application: answers GET / with its version and the deployment that installed it."""
import http.server
import itertools
import os
import socketserver

# realpath: a server started from one release keeps reading that release after `current` moves.
HERE = os.path.dirname(os.path.realpath(__file__))
PORT = int(os.environ.get("APP_PORT", "8080"))


def read(name, default=""):
    try:
        with open(os.path.join(HERE, name)) as handle:
            return handle.read().strip()
    except OSError:
        return default


# A FAIL_EVERY file (N) makes every Nth request to / fail with 500 once the server has answered 20 of them: a
# revision that passes its health checks and ValidateService but fails under real traffic (the canary tests use it).
FAIL_EVERY = int(read("FAIL_EVERY", "0") or 0)
REQUESTS = itertools.count(1)


def _fails(number):
    return number > 20 and number % FAIL_EVERY == 0


class Handler(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        status = 200
        if self.path == "/health":
            body = b"ok\n"
        elif FAIL_EVERY and _fails(next(REQUESTS)):
            status, body = 500, b"failing under load on purpose (FAIL_EVERY)\n"
        else:
            # release: the directory this server runs from (a release id in release mode).
            body = ("appspec-example version=%s release=%s deployment=%s\n"
                    % (read("VERSION"), os.path.basename(HERE), read("DEPLOYMENT"))).encode()
        self.send_response(status)
        self.send_header("Content-Type", "text/plain")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


class Server(socketserver.ThreadingMixIn, http.server.HTTPServer):
    daemon_threads = True
    allow_reuse_address = True


if __name__ == "__main__":
    Server(("", PORT), Handler).serve_forever()
