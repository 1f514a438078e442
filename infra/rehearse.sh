#!/usr/bin/env bash
# Deploy rehearsal: creates infra/template.yaml's resources, less the functions, as a
# CloudFormation stack in LocalStack, checks each against the template, and deletes the stack
# (also on failure). The work is done by infra/rehearse.py (read its header) with the Python of
# LocalStack's pinned venv ($FMN_LOCAL_DIR/venv-localstack: aws-sam-translator 1.115.0, boto3).
#
#   infra/rehearse.sh                   LocalStack must run (make emulators-up; make rehearse starts it)
#   infra/rehearse.sh --transform-only  the CloudFormation it would deploy, on stdout; offline
#   infra/rehearse.sh --keep            leave the stack in LocalStack (debugging)
#
# Settings: AWS_ENDPOINT_URL (from localstack/env.sh; required: it never runs against real AWS),
# FMN_LOCAL_DIR (default <repo>/.local), FMN_REHEARSAL_TIMEOUT (seconds per stack operation, 300).
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "$here/.." && pwd)
local_dir=${FMN_LOCAL_DIR:-$repo/.local}
python=$local_dir/venv-localstack/bin/python

die() { printf 'error: %s\n' "$*" >&2; exit 1; }

[ -x "$python" ] ||
  die "no LocalStack venv at $local_dir/venv-localstack (it holds the pinned SAM translator): run localstack/install.sh or make emulators-up"
"$python" -c 'import samtranslator, boto3, yaml' 2>/dev/null ||
  die "$python lacks samtranslator, boto3 or yaml: the LocalStack venv is incomplete; rerun localstack/install.sh (FMN_FORCE_INSTALL=1 rebuilds it)"

transform_only=0
for a in "$@"; do
  case "$a" in
    --transform-only) transform_only=1 ;;
    --keep) ;;
    -h | --help) exec "$python" "$here/rehearse.py" --help ;;
    *) die "unknown argument '$a' (expected --transform-only, --keep)" ;;
  esac
done

# shellcheck source=/dev/null
source "$repo/localstack/env.sh"
if [ "$transform_only" = 0 ] && [[ "$AWS_ENDPOINT_URL" =~ ^http://(127\.0\.0\.1|localhost):([0-9]+)/?$ ]]; then
  # The local LocalStack must answer with CloudFormation and the services it creates into:
  # probe.py knows the list (SERVICES in localstack/_lib.sh) and says when a LocalStack started
  # before that list changed needs a restart.
  code=0
  detail=$("$python" "$repo/localstack/probe.py" check localstack "${BASH_REMATCH[2]}") || code=$?
  case "$code" in
    0) ;;
    5) die "$detail" ;;
    *) die "LocalStack at $AWS_ENDPOINT_URL is not ready: $detail (start it: make emulators-up)" ;;
  esac
fi
exec "$python" "$here/rehearse.py" "$@"
