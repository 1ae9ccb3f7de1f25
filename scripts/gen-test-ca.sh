#!/usr/bin/env bash
# Makes a throwaway CA and a server certificate for 127.0.0.1 and localhost signed by it, for
# serving the Losant API emulator over HTTPS in demos and manual tests (the Rust tests make the
# same files with rcgen: tests/test_ca/mod.rs).
#
# Usage: scripts/gen-test-ca.sh DIR
# Writes into DIR (created if missing):
#   ca.pem, ca-key.pem         the CA (ca.pem is what clients trust, e.g. a caBundleSecretRef Secret)
#   server.pem, server-key.pem the server certificate and key, for
#                              losant-emulator --tls-cert DIR/server.pem --tls-key DIR/server-key.pem
# Needs openssl (1.1.1 or newer). Keys are EC P-256; certificates are valid for 825 days.
set -euo pipefail

if [[ $# -ne 1 || -z "$1" ]]; then
  echo "usage: $0 DIR" >&2
  exit 2
fi
command -v openssl >/dev/null || { echo "$0: openssl not found" >&2; exit 1; }
dir=$1
mkdir -p "$dir"
umask 077
ext=$(mktemp)
trap 'rm -f "$ext" "$dir/server.csr" "$dir/ca.srl"' EXIT

openssl req -x509 -new -nodes -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 \
  -keyout "$dir/ca-key.pem" -out "$dir/ca.pem" -days 825 \
  -subj "/CN=losant-operator test CA" \
  -addext "basicConstraints=critical,CA:TRUE" \
  -addext "keyUsage=critical,keyCertSign,cRLSign,digitalSignature" 2>/dev/null

openssl req -new -nodes -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 \
  -keyout "$dir/server-key.pem" -out "$dir/server.csr" -subj "/CN=losant-emulator" 2>/dev/null

cat >"$ext" <<'EXT'
basicConstraints=critical,CA:FALSE
keyUsage=critical,digitalSignature,keyEncipherment
extendedKeyUsage=serverAuth
subjectAltName=IP:127.0.0.1,DNS:localhost
subjectKeyIdentifier=hash
authorityKeyIdentifier=keyid,issuer
EXT
openssl x509 -req -in "$dir/server.csr" -CA "$dir/ca.pem" -CAkey "$dir/ca-key.pem" \
  -CAcreateserial -days 825 -sha256 -extfile "$ext" -out "$dir/server.pem" 2>/dev/null

# The certificates are public; only the keys stay private.
chmod 644 "$dir/ca.pem" "$dir/server.pem"
echo "wrote $dir/ca.pem, $dir/server.pem and $dir/server-key.pem" >&2
