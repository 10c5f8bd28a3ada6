#!/bin/bash
# ApplicationStart: start the server from the installed files, detached from the hook.
# Under systemd it runs as a transient service (as a real application would run); elsewhere it
# is a detached session of its own.
set -eu
app=/opt/appspec-example/current
state=/var/lib/appspec-example
mkdir -p "$state"
echo "$DEPLOYMENT_ID" > "$app/DEPLOYMENT"
pidfile=$state/server.pid
if [ -f "$pidfile" ] && kill -0 "$(cat "$pidfile")" 2>/dev/null; then
    kill "$(cat "$pidfile")"; sleep 0.5
fi
if [ -d /run/systemd/system ] && command -v systemd-run >/dev/null; then
    systemctl reset-failed appspec-example.service 2>/dev/null || true
    systemd-run --quiet --unit appspec-example --property=StandardOutput=append:"$state/server.log" \
        --property=StandardError=append:"$state/server.log" /usr/bin/python3 "$app/server.py"
    systemctl show --property MainPID --value appspec-example.service > "$pidfile"
else
    cd /
    setsid python3 "$app/server.py" >>"$state/server.log" 2>&1 < /dev/null &
    echo $! > "$pidfile"
fi
echo "started server $(cat "$pidfile") from $(readlink -f "$app")"
