#!/bin/bash
# ValidateService: the server answers with the version just installed, started by this deployment.
set -eu
version="version=$(cat /opt/appspec-example/current/VERSION)"
deployment="deployment=$DEPLOYMENT_ID"
for _ in $(seq 50); do
    if python3 - "$version" "$deployment" <<'PY'
import os, sys, urllib.request
url = "http://127.0.0.1:%s/" % os.environ.get("APP_PORT", "8080")
try:
    body = urllib.request.urlopen(url, timeout=2).read().decode()
except OSError:  # not listening yet
    sys.exit(1)
sys.exit(0 if all(word in body.split() for word in sys.argv[1:]) else 1)
PY
    then echo "serving: $version $deployment"; exit 0; fi
    sleep 0.2
done
echo "the server does not answer with '$version' and '$deployment'" >&2
exit 1
