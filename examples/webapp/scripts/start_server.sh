#!/bin/bash
# ApplicationStart: start the server from the installed files, detached from the hook.
set -eu
app=/opt/appspec-example/current
state=/var/lib/appspec-example
mkdir -p "$state"
echo "$DEPLOYMENT_ID" > "$app/DEPLOYMENT"
pidfile=$state/server.pid
if [ -f "$pidfile" ] && kill -0 "$(cat "$pidfile")" 2>/dev/null; then
    kill "$(cat "$pidfile")"; sleep 0.5
fi
cd /
setsid python3 "$app/server.py" >>"$state/server.log" 2>&1 < /dev/null &
echo $! > "$pidfile"
echo "started server $(cat "$pidfile") from $(readlink -f "$app")"
