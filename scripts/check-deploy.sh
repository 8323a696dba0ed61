#!/usr/bin/env bash
# Validates the deployment files in docker/ without a Docker daemon or a cluster:
# - Kubernetes manifests against the API schemas (kubernetes-validate, strict: unknown fields fail);
#   docker/k8s/monitoring/ holds CRDs (ServiceMonitor) and is only checked to be YAML;
# - the compose file against the Compose specification (check-jsonschema);
# - the Prometheus alert rules (promtool check rules, and their unit tests with promtool test rules);
# - every PromQL expression of the Grafana dashboard (as recording rules, through promtool);
# - the systemd unit (systemd-analyze verify, with the built binary standing in for the installed one).
# The gateway.conf files and snapshots they carry are run by scripts/check-shipped.sh (OperatorTests).
# Needs: pip install kubernetes-validate check-jsonschema; Debian prometheus (promtool), systemd.
set -euo pipefail
cd "$(dirname "$0")/.."
kubernetes-validate --strict docker/k8s/*.yaml
python3 -c 'import sys, yaml; [list(yaml.safe_load_all(open(f))) for f in sys.argv[1:]]' docker/k8s/monitoring/*.yaml
check-jsonschema --builtin-schema vendor.compose-spec docker/compose.yaml
promtool check rules docker/prometheus/alerts.yaml
promtool test rules docker/prometheus/alerts.test.yaml
tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT
python3 - docker/grafana/tenant-gateway.json "$tmp/dashboard-rules.yaml" <<'PY'
import json, sys
dash = json.load(open(sys.argv[1]))
exprs = [t["expr"] for p in dash["panels"] for t in p.get("targets", [])]
with open(sys.argv[2], "w") as out:
    out.write("groups:\n  - name: dashboard\n    rules:\n")
    for i, e in enumerate(exprs):
        out.write(f"      - record: dashboard:expr{i}\n        expr: {json.dumps(e)}\n")
print(f"dashboard: {len(exprs)} expressions")
PY
promtool check rules "$tmp/dashboard-rules.yaml" >/dev/null && echo "dashboard expressions: ok"
if command -v systemd-analyze >/dev/null; then
  bin="$(swift build --show-bin-path 2>/dev/null)/tenant-gateway"
  [ -x "$bin" ] || bin=/bin/true
  sed "s#/usr/local/bin/tenant-gateway#$bin#g" docker/systemd/tenant-gateway.service > "$tmp/tenant-gateway.service"
  out="$(SYSTEMD_LOG_LEVEL=warning systemd-analyze verify --man=no "$tmp/tenant-gateway.service" 2>&1 || true)"
  if [ -n "$out" ]; then echo "$out"; echo "systemd unit: FAILED"; exit 1; fi
  echo "systemd unit: ok"
fi
echo "deployment files: ok"
