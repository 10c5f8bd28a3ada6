#!/bin/bash
# ApplicationStop: stop the server this revision started, if it runs.
set -eu
pidfile=/var/lib/appspec-example/server.pid
if [ -f "$pidfile" ] && kill -0 "$(cat "$pidfile")" 2>/dev/null; then
    kill "$(cat "$pidfile")"
    for _ in $(seq 50); do kill -0 "$(cat "$pidfile")" 2>/dev/null || break; sleep 0.1; done
    echo "stopped server $(cat "$pidfile")"
fi
rm -f "$pidfile"
