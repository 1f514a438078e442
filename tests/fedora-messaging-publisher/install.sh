#!/usr/bin/env bash
# Creates the venv of the real fedora-messaging publisher used by the ingest-bridge AMQP tests
# ($FMN_LOCAL_DIR/venv-fedora-messaging), from the pinned requirements.txt beside this script,
# and checks that the library imports and finds the schema classes of the corpus. Idempotent;
# see scripts/pinned-venv.sh.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
exec "$here/../../scripts/pinned-venv.sh" fedora-messaging "$here/requirements.txt" \
  "fedora-messaging publisher for the ingest-bridge tests" \
  python -c 'import fedora_messaging.api, pika, crochet; from fedora_messaging.message import get_class; assert get_class("bodhi.update.comment.v1").__name__ != "Message"; assert get_class("anitya.distro.add").__name__ != "Message"'
