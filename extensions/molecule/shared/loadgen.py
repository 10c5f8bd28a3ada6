"""A bounded HTTP load generator for the rolling scenario (only ever aimed at a test container).

    loadgen.py URL STOPFILE RESULT [THREADS] [MAX_SECONDS]

Sends GET requests with THREADS keep-alive clients until STOPFILE exists (or MAX_SECONDS pass),
then writes RESULT as JSON: total, failed, the first errors, and how many answers each version gave.

Like browsers, curl and HTTP libraries, a client retries a GET once on a new connection when a REUSED
keep-alive connection was closed before any response came (RFC 9112, 9.3.1: the server may close an
idle connection at any time, as nginx does on a graceful reload). Such retries are counted in
``retried``; a request that fails on a fresh connection, or gets a wrong answer, counts as failed.
"""
import http.client
import json
import os
import sys
import threading
import time
import urllib.parse


def main() -> int:
    url, stopfile, result = sys.argv[1:4]
    threads = int(sys.argv[4]) if len(sys.argv) > 4 else 4
    deadline = time.time() + (float(sys.argv[5]) if len(sys.argv) > 5 else 600)
    parts = urllib.parse.urlsplit(url)
    lock = threading.Lock()
    stats = {"total": 0, "failed": 0, "retried": 0, "errors": [], "versions": {}, "started": time.time()}

    def worker() -> None:
        conn = None
        reused = False
        while not os.path.exists(stopfile) and time.time() < deadline:
            retried = False
            while True:
                try:
                    if conn is None:
                        conn, reused = http.client.HTTPConnection(parts.hostname, parts.port or 80, timeout=10), False
                    conn.request("GET", parts.path or "/")
                    response = conn.getresponse()
                    body = response.read().decode(errors="replace")
                    ok = response.status == 200 and "version=" in body
                    version = body.split("version=", 1)[1].split()[0] if ok else None
                    error = None if ok else "HTTP %s: %s" % (response.status, body[:100])
                    reused = True
                except (OSError, http.client.HTTPException) as err:
                    ok, version, error = False, None, "%s: %s" % (type(err).__name__, err)
                    conn.close()
                    conn = None
                    closed_idle = isinstance(err, (http.client.RemoteDisconnected, ConnectionResetError, BrokenPipeError))
                    if reused and closed_idle and not retried:
                        retried = True
                        continue
                break
            with lock:
                stats["total"] += 1
                stats["retried"] += retried
                if ok:
                    stats["versions"][version] = stats["versions"].get(version, 0) + 1
                else:
                    stats["failed"] += 1
                    if len(stats["errors"]) < 20:
                        stats["errors"].append("%.3f %s" % (time.time(), error))

    pool = [threading.Thread(target=worker, daemon=True) for _index in range(threads)]
    for thread in pool:
        thread.start()
    for thread in pool:
        thread.join()
    stats["seconds"] = round(time.time() - stats["started"], 2)
    with open(result, "w", encoding="utf-8") as handle:
        json.dump(stats, handle, indent=1, sort_keys=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
