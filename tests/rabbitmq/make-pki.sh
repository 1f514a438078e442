#!/usr/bin/env bash
# make-pki.sh DIR — the test PKI of tests/support/rabbitmq.rs, shaped like Fedora's public
# broker (functions/ingest-bridge/fedora-public/README.md): a CA bundle holding TWO CA
# certificates of the SAME subject (a rotation), the server certificate signed by the second,
# the client certificate (CN=fedora) by the first. Generated per test run with the openssl CLI;
# nothing here is secret and no key is committed.
#
# Files written to DIR:
#   ca1.pem ca1.key ca2.pem ca2.key   the two CAs, both "CN=fmn test RabbitMQ CA"
#   cacert.pem                         ca1.pem + ca2.pem (what clients and the broker trust)
#   server.pem server.key              CN=localhost, SAN IP:127.0.0.1 DNS:localhost, by ca2
#   client.pem client.key              CN=fedora, clientAuth, by ca1 (logs in as `fedora`); like
#                                      Fedora's fedora-cert.pem, OpenSSL's text dump of the
#                                      certificate comes before the PEM block
#   intruder.pem intruder.key          CN=intruder, by ca1: TLS accepted, EXTERNAL login refused
#   rogue-ca.pem rogue-ca.key          a third CA with the same name, NOT in cacert.pem
#   rogue.pem rogue.key                CN=fedora, by the rogue CA: refused in the TLS handshake
set -euo pipefail
[ $# -eq 1 ] || { echo "usage: $0 DIR" >&2; exit 2; }
mkdir -p "$1"
cd "$1"
umask 077

cat >server.ext <<'X'
basicConstraints=critical,CA:FALSE
keyUsage=critical,digitalSignature,keyEncipherment
extendedKeyUsage=serverAuth
subjectAltName=IP:127.0.0.1,DNS:localhost
subjectKeyIdentifier=hash
authorityKeyIdentifier=keyid
X
cat >client.ext <<'X'
basicConstraints=critical,CA:FALSE
keyUsage=critical,digitalSignature,keyEncipherment
extendedKeyUsage=clientAuth
subjectKeyIdentifier=hash
authorityKeyIdentifier=keyid
X

ca() { # NAME
  openssl req -x509 -newkey rsa:2048 -nodes -keyout "$1.key" -out "$1.pem" -days 3650 \
    -subj "/CN=fmn test RabbitMQ CA" \
    -addext "basicConstraints=critical,CA:TRUE" \
    -addext "keyUsage=critical,keyCertSign,cRLSign" 2>/dev/null
}
leaf() { # NAME CN CA EXTFILE
  openssl req -newkey rsa:2048 -nodes -keyout "$1.key" -out "$1.csr" -subj "/CN=$2" 2>/dev/null
  openssl x509 -req -in "$1.csr" -CA "$3.pem" -CAkey "$3.key" -CAcreateserial -out "$1.pem" \
    -days 825 -extfile "$4" 2>/dev/null
  rm -f "$1.csr"
}

ca ca1
ca ca2
ca rogue-ca
leaf server localhost ca2 server.ext
leaf client fedora ca1 client.ext
leaf intruder intruder ca1 client.ext
leaf rogue fedora rogue-ca client.ext
cat ca1.pem ca2.pem >cacert.pem
# Client certificates in the shape of Fedora's fedora-cert.pem: `openssl x509 -text` output.
for c in client intruder rogue; do
  openssl x509 -in "$c.pem" -text >"$c.pem.text"
  mv "$c.pem.text" "$c.pem"
done
rm -f ./*.srl server.ext client.ext
# The broker (and publishers) may run as another user than the one that made the files.
chmod 644 ./*.pem ./*.key
openssl verify -CAfile cacert.pem server.pem client.pem intruder.pem >/dev/null
