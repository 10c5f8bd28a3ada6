#!/bin/bash
# ValidateService: the server answers with the version just installed.
set -eu
want="version=$(cat /opt/appspec-example/current/VERSION) deployment=$DEPLOYMENT_ID"
for _ in $(seq 50); do
    if python3 - "$want" <<'PY'
import sys, urllib.request
body = urllib.request.urlopen("http://127.0.0.1:%s/" % __import__("os").environ.get("APP_PORT", "8080"), timeout=2).read().decode()
sys.exit(0 if sys.argv[1] in body else 1)
PY
    then echo "serving: $want"; exit 0; fi
    sleep 0.2
done
echo "the server does not answer with '$want'" >&2
exit 1
