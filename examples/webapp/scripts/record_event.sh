#!/bin/bash
# Leaves a marker per lifecycle event, holding the environment CodeDeploy gives hooks.
set -eu
markers=/var/lib/appspec-example/markers
mkdir -p "$markers"
{
    echo "LIFECYCLE_EVENT=$LIFECYCLE_EVENT"
    echo "DEPLOYMENT_ID=$DEPLOYMENT_ID"
    echo "APPLICATION_NAME=$APPLICATION_NAME"
    echo "DEPLOYMENT_GROUP_NAME=$DEPLOYMENT_GROUP_NAME"
    echo "DEPLOYMENT_GROUP_ID=$DEPLOYMENT_GROUP_ID"
    echo "SCRIPT_DIR=$(cd "$(dirname "$0")" && pwd)"
} > "$markers/$LIFECYCLE_EVENT"
echo "$(date -u +%FT%TZ) $DEPLOYMENT_ID $LIFECYCLE_EVENT" >> "$markers/history"
echo "recorded $LIFECYCLE_EVENT for $DEPLOYMENT_ID"
