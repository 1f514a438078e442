#!/usr/bin/env bash
# Validates infra/template.yaml as AWS will read it: cfn-lint (CloudFormation and SAM rules)
# and `sam validate --lint`, from the pinned venv $FMN_LOCAL_DIR/venv-infra (made here,
# idempotent), plus the bridge's systemd unit (`systemd-analyze verify`, where systemd is).
# Offline: no AWS account is used.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "$here/.." && pwd)
"$repo/scripts/pinned-venv.sh" infra "$here/requirements.txt" \
  "cfn-lint and the SAM CLI" sam --version
venv=${FMN_LOCAL_DIR:-$repo/.local}/venv-infra
export SAM_CLI_TELEMETRY=0 AWS_REGION=${AWS_REGION:-us-east-1}
echo "==> cfn-lint infra/template.yaml"
"$venv/bin/cfn-lint" "$here/template.yaml"
echo "==> sam validate --lint"
# SAM reads credentials to build its client even when it calls nothing: give it dummies.
AWS_ACCESS_KEY_ID=${AWS_ACCESS_KEY_ID:-lint} AWS_SECRET_ACCESS_KEY=${AWS_SECRET_ACCESS_KEY:-lint} \
  "$venv/bin/sam" validate --lint --template "$here/template.yaml"
unit=$repo/functions/ingest-bridge/deploy/fmn-ingest-bridge.service
if command -v systemd-analyze >/dev/null 2>&1; then
  echo "==> systemd-analyze verify $(basename "$unit")"
  # Verified as installed would be, with this machine's shell standing in for the binary.
  tmp=$(mktemp -d)
  trap 'rm -rf "$tmp"' EXIT
  sed -e "s#^ExecStart=.*#ExecStart=$(command -v true)#" \
      -e "s#^EnvironmentFile=#EnvironmentFile=-#" "$unit" >"$tmp/fmn-ingest-bridge.service"
  systemd-analyze verify "$tmp/fmn-ingest-bridge.service"
else
  echo "==> systemd-analyze not found: the bridge's unit is not checked"
fi
