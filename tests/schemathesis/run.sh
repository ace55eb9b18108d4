#!/usr/bin/env bash
# Runs schemathesis (pinned in requirements.txt) with every check against the served
# component's own /openapi.json: the release .wasm under spin-test-host, as `spin up` serves
# it, on a fresh SQLite directory. Exits non-zero when schemathesis reports any failure, so
# the document keeps saying exactly what the service does. README.md beside this file says
# what runs and why; hooks.py what is not counted as a failure and why.
set -euo pipefail
cd "$(dirname "$0")/../.."
root=$(pwd)

# A fixed seed: the same requests in the same order on every run.
seed=${SCHEMATHESIS_SEED:-20261121}
max_examples=${SCHEMATHESIS_MAX_EXAMPLES:-25}
target=${CARGO_TARGET_DIR:-target}
case "$target" in /*) ;; *) target="$root/$target" ;; esac
here="$root/tests/schemathesis"

step() { printf '\n--- %s\n' "$*"; }

step "schemathesis in $target/schemathesis-venv"
venv="$target/schemathesis-venv"
[ -x "$venv/bin/python" ] || python3 -m venv "$venv"
"$venv/bin/pip" install --quiet --disable-pip-version-check -r "$here/requirements.txt"
"$venv/bin/schemathesis" --version

step "build the component (release, wasm32-wasip2) and spin-test-host"
cargo build -p task-api-spin --target wasm32-wasip2 --release
cargo build -p spin-test-host --bin spin-test-host
wasm="$target/wasm32-wasip2/release/task_api_spin.wasm"
host_bin="$target/debug/spin-test-host"

work=$(mktemp -d)
host_pid=
cleanup() {
  if [ -n "$host_pid" ] && kill -0 "$host_pid" 2>/dev/null; then
    kill "$host_pid" 2>/dev/null || true
    wait "$host_pid" 2>/dev/null || true
  fi
  rm -rf "$work"
}
trap cleanup EXIT

# A free port: the kernel picks one, released just before the host binds it.
port=$("$venv/bin/python" -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
secret=$("$venv/bin/python" -c 'import secrets; print(secrets.token_hex(32))')

step "serve $wasm on 127.0.0.1:$port"
# Built-in accounts on, so that their routes are exercised too; the web page off (an API
# deployment). Explicit variables win over the repository's .env, which turns both on.
"$host_bin" --listen "127.0.0.1:$port" --wasm "$wasm" --sqlite-dir "$work/spin" \
  --variable "jwt_secret=$secret" --variable accounts=true --variable web_ui=false \
  >"$work/host.log" 2>&1 &
host_pid=$!
# The first start compiles the component (about a minute in a debug host); later ones load
# it from target/spin-test-host-cache.
for _ in $(seq 1 600); do
  if curl -fsS "http://127.0.0.1:$port/health" >/dev/null 2>&1; then break; fi
  kill -0 "$host_pid" 2>/dev/null || { cat "$work/host.log"; echo "spin-test-host exited"; exit 1; }
  sleep 0.5
done
curl -fsS "http://127.0.0.1:$port/health" >/dev/null || { cat "$work/host.log"; echo "spin-test-host did not answer"; exit 1; }

# An HS256 token for one user, as a frontend's server mints them (sub, iat, exp).
token=$("$venv/bin/python" - "$secret" <<'PY'
import base64, hashlib, hmac, json, sys, time

def b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()

secret = sys.argv[1].encode()
now = int(time.time())
header = b64(json.dumps({"alg": "HS256", "typ": "JWT"}).encode())
claims = b64(json.dumps({"sub": "schemathesis", "iat": now, "exp": now + 3600}).encode())
signature = b64(hmac.new(secret, f"{header}.{claims}".encode(), hashlib.sha256).digest())
print(f"{header}.{claims}.{signature}")
PY
)

step "schemathesis run --checks all --seed $seed --max-examples $max_examples"
# One worker, so that requests (and the state they leave) come in the seed's order; no
# example database, so that nothing from an earlier run is replayed. Run from the
# temporary directory, where Hypothesis may leave its files.
status=0
(
  cd "$work"
  SCHEMATHESIS_HOOKS="$here/hooks.py" SCHEMATHESIS_DROPPED_LOG="$work/dropped.tsv" \
    "$venv/bin/schemathesis" run "http://127.0.0.1:$port/openapi.json" \
    --checks all \
    --seed "$seed" \
    --max-examples "$max_examples" \
    --workers 1 \
    --generation-database none \
    --no-color \
    -H "Authorization: Bearer $token"
) || status=$?
if [ -s "$work/dropped.tsv" ]; then
  echo "Not counted as failures (hooks.py), by reason, check, status and problem code:"
  cut -f1-3 "$work/dropped.tsv" | sort | uniq -c | sort -rn
fi
if [ "$status" -ne 0 ]; then
  echo "schemathesis failed (exit $status); the host's log ends with:"
  tail -n 40 "$work/host.log"
  exit "$status"
fi
