#!/usr/bin/env bash
# Installs the Debian packages fmn needs, only those missing. Idempotent.
set -euo pipefail

# command -> package that provides it
declare -A wanted=(
  [flock]=util-linux
  [ss]=iproute2
  [pkg-config]=pkg-config
  [c++]=g++
  [openssl]=openssl
  [readelf]=binutils   # scripts/check-glibc.sh reads the Lambda bootstraps' glibc needs
  [ngircd]=ngircd   # the IRC server of the deliver-irc tests (/usr/sbin/ngircd)
  [inspircd]=inspircd   # the IRC server with SASL (m_sasl) of the deliver-irc SASL/NickServ tests
  [atheme-services]=atheme-services   # its services (NickServ, SASL PLAIN), linked to inspircd by the tests
  [chromium]=chromium   # the headless browser of the preferences page test (tests/browser)
  [rabbitmq-server]=rabbitmq-server   # the AMQP broker of the ingest-bridge tests (/usr/sbin; tests/support/rabbitmq.rs)
  # The MIT KDC of the FASJSON Kerberos tests (tests/support/kdc.rs): krb5kdc and kdb5_util,
  # kadmin.local for the test realm's principals and keytabs.
  [krb5kdc]=krb5-kdc
  [kadmin.local]=krb5-admin-server
)
missing=()
for cmd in "${!wanted[@]}"; do
  # /usr/sbin is not on every user's PATH (ngircd lives there).
  command -v "$cmd" >/dev/null 2>&1 || [ -x "/usr/sbin/$cmd" ] || missing+=("${wanted[$cmd]}")
done
# The FASJSON stand-in verifies Negotiate tokens with python-gssapi over the system's MIT
# krb5: a module of the system interpreter, /usr/bin/python3 (tests/support/standins.rs).
/usr/bin/python3 -c 'import gssapi' >/dev/null 2>&1 || missing+=(python3-gssapi)
# FreeIPA's KDC proxy (MS-KKDCP), in front of the test KDC (tests/support/kdc.rs).
/usr/bin/python3 -c 'import kdcproxy' >/dev/null 2>&1 || missing+=(python3-kdcproxy)
if [ ${#missing[@]} -eq 0 ]; then
  exit 0
fi
echo "==> installing system packages: ${missing[*]}"
sudo_cmd=()
if [ "$(id -u)" -ne 0 ]; then
  command -v sudo >/dev/null || { echo "error: need root or sudo to install: ${missing[*]}" >&2; exit 1; }
  sudo_cmd=(sudo)
fi
export DEBIAN_FRONTEND=noninteractive

# The tests run RabbitMQ (and ngIRCd, InspIRCd, Atheme, the MIT KDC) as plain processes of their own: the packages must not
# leave a system service running, and their install must not fail where there is no init
# system (containers, CI). A policy-rc.d that denies every start keeps invoke-rc.d from
# starting them; one already there (a container's) is left as it is.
policy=/usr/sbin/policy-rc.d
added_policy=0
if [ ! -e "$policy" ]; then
  printf '#!/bin/sh\n# fmn scripts/system-deps.sh: no service starts during the install\nexit 101\n' |
    "${sudo_cmd[@]}" tee "$policy" >/dev/null
  "${sudo_cmd[@]}" chmod 755 "$policy"
  added_policy=1
fi
remove_policy() { if [ "$added_policy" = 1 ]; then "${sudo_cmd[@]}" rm -f "$policy"; fi; }
trap remove_policy EXIT

"${sudo_cmd[@]}" apt-get update -qq
"${sudo_cmd[@]}" apt-get install -y -qq --no-install-recommends "${missing[@]}"

# Stop a system broker (and its epmd) if the install started one anyway (systemd hosts
# without the policy taking effect): the tests start their own nodes, and a system one would
# hold 5672 and the default node name.
if [[ " ${missing[*]} " == *" rabbitmq-server "* ]]; then
  if command -v systemctl >/dev/null 2>&1 && [ -d /run/systemd/system ]; then
    "${sudo_cmd[@]}" systemctl stop rabbitmq-server.service epmd.service epmd.socket 2>/dev/null || true
    "${sudo_cmd[@]}" systemctl disable rabbitmq-server.service 2>/dev/null || true
  fi
  if pgrep -u rabbitmq -f beam >/dev/null 2>&1; then
    "${sudo_cmd[@]}" /usr/sbin/rabbitmqctl stop >/dev/null 2>&1 || true
  fi
fi
