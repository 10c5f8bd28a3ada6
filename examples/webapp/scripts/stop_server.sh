#!/bin/bash
# ApplicationStop: stop the server this revision started, if it runs.
set -eu
pidfile=/var/lib/appspec-example/server.pid
# Running and not a zombie waiting for its (re)parent to reap it.
running() { ps -o stat= -p "$1" 2>/dev/null | grep -qv '^Z'; }
if [ -f "$pidfile" ] && running "$(cat "$pidfile")"; then
    kill "$(cat "$pidfile")"
    for _ in $(seq 50); do running "$(cat "$pidfile")" || break; sleep 0.1; done
    echo "stopped server $(cat "$pidfile")"
fi
rm -f "$pidfile"
