#!/usr/bin/env bash
# Validates the deployment files in docker/ without a Docker daemon or a cluster:
# Kubernetes manifests against the API schemas (kubernetes-validate, strict: unknown fields fail),
# the compose file against the Compose specification (check-jsonschema). The gateway.conf files they
# carry are checked by the unit tests (GatewayConfigTests "Shipped deployment configs load").
# Needs: pip install kubernetes-validate check-jsonschema (scripts/install-deps.sh).
set -euo pipefail
cd "$(dirname "$0")/.."
kubernetes-validate --strict docker/k8s/*.yaml
check-jsonschema --builtin-schema vendor.compose-spec docker/compose.yaml
echo "deployment files: ok"
