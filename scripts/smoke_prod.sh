#!/usr/bin/env bash
# Production smoke test: Parley as an operator deploys it, checked end to end.
#
# Two uvicorn processes (worker A and worker B, on two ports, as behind a load
# balancer) with production settings: DEBUG off, a random SECRET_KEY,
# PostgreSQL (a throwaway database, created, migrated, dropped) and Redis (one
# database, flushed) shared by both, the admin's static files served by
# WhiteNoise, LLM_PROVIDER=openai pointed at the fake OpenAI-compatible
# upstream (tests/fakes/openai_upstream.py) running as its own process. The
# scenario alternates between the workers on purpose: register on A, read on
# B, top up by `manage.py topup_wallet`, stream a reply, read the history, a
# throttle counted across both workers (Redis), static files, probes, log out
# (the refresh token is dead everywhere), then `audit_wallets`.
#
#     scripts/smoke_prod.sh                      # needs PostgreSQL and Redis on localhost
#     VENV=/path/to/venv SMOKE_POSTGRES_URL=postgres://user@host:5432 scripts/smoke_prod.sh
#
# Environment: VENV (default .venv), SMOKE_POSTGRES_URL (server, default
# postgres://postgres@127.0.0.1:5432), SMOKE_DB (database, default
# parley_smoke; dropped at the end), SMOKE_REDIS_URL (default
# redis://127.0.0.1:6379/5; flushed before and after), SMOKE_KEEP=1 keeps the
# database and the logs for a post-mortem. Exits non-zero, with a message
# naming the failed check and the tail of every process's log, on any
# deviation; every process it started is stopped on exit.
set -euo pipefail
cd "$(dirname "$0")/.."

VENV=${VENV:-.venv}
PY="$VENV/bin/python"
PG_SERVER=${SMOKE_POSTGRES_URL:-postgres://postgres@127.0.0.1:5432}
DB_NAME=${SMOKE_DB:-parley_smoke}
REDIS=${SMOKE_REDIS_URL:-redis://127.0.0.1:6379/5}
HELP="scripts/smoke_helpers.py"
STARTED=$SECONDS

[ -x "$PY" ] || { echo "smoke: no Python at $PY (set VENV)" >&2; exit 1; }
command -v curl >/dev/null || { echo "smoke: curl is required" >&2; exit 1; }

WORK=$(mktemp -d "${TMPDIR:-/tmp}/parley-smoke.XXXXXX")
PIDS=()

cleanup() {
    local status=$?
    trap - EXIT INT TERM
    for pid in "${PIDS[@]}"; do
        kill -TERM "$pid" 2>/dev/null || true
    done
    for pid in "${PIDS[@]}"; do
        # uvicorn drains for a moment; a process still there after 10 s is killed.
        for _ in $(seq 100); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
        kill -KILL "$pid" 2>/dev/null || true
        wait "$pid" 2>/dev/null || true
    done
    if [ "$status" -ne 0 ]; then
        for log in "$WORK"/*.log; do
            [ -f "$log" ] || continue
            echo "---- last lines of $(basename "$log")" >&2
            tail -n 30 "$log" >&2
        done
    fi
    if [ "${SMOKE_KEEP:-0}" = 1 ]; then
        echo "smoke: kept database $DB_NAME and logs in $WORK" >&2
    else
        "$PY" "$HELP" db-drop "$PG_SERVER" "$DB_NAME" 2>/dev/null || true
        "$PY" "$HELP" redis-flush "$REDIS" 2>/dev/null || true
        rm -rf "$WORK"
    fi
    if [ "$status" -eq 0 ]; then
        echo "== smoke test passed in $((SECONDS - STARTED)) s"
    else
        echo "== SMOKE TEST FAILED (exit $status) after $((SECONDS - STARTED)) s" >&2
    fi
    exit "$status"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

fail() {
    echo "smoke: FAILED: $*" >&2
    exit 1
}
step() { echo "-- $*"; }

# --- the environment a deployment sets ------------------------------------------
read -r PORT_A PORT_B PORT_FAKE < <("$PY" "$HELP" free-ports 3 | paste -sd' ')
A="http://127.0.0.1:$PORT_A"
B="http://127.0.0.1:$PORT_B"
FAKE="http://127.0.0.1:$PORT_FAKE"
REPLY="Smoke test reply from the fake upstream."

export DJANGO_SETTINGS_MODULE=config.settings
SECRET_KEY=$("$PY" -c 'import secrets; print(secrets.token_urlsafe(50))')
export SECRET_KEY
export DEBUG=false
export ALLOWED_HOSTS=127.0.0.1,localhost
export DATABASE_URL="$PG_SERVER/$DB_NAME"
export DATABASE_POOL_MIN=1 DATABASE_POOL_MAX=4
export REDIS_URL="$REDIS"
export AUTH_THROTTLE_RATE=5/min
export MESSAGE_THROTTLE_RATE=4/min
export NUM_PROXIES=1 # behind one load balancer: X-Forwarded-For names the client
export LLM_PROVIDER=openai
export OPENAI_BASE_URL="$FAKE/v1"
export OPENAI_API_KEY=smoke-test-key
export LLM_MAX_RETRIES=0
export INITIAL_WALLET_BALANCE=100
export LOG_LEVEL=WARNING

# --- database, cache, static files ------------------------------------------------
step "database $DB_NAME (fresh), Redis $REDIS (flushed), migrate, collectstatic"
"$PY" "$HELP" db-reset "$PG_SERVER" "$DB_NAME" || fail "cannot (re)create database $DB_NAME on $PG_SERVER"
"$PY" "$HELP" redis-flush "$REDIS" || fail "cannot flush Redis at $REDIS"
"$PY" manage.py migrate --noinput -v 0 || fail "migrate"
"$PY" manage.py collectstatic --noinput -v 0 || fail "collectstatic"

# --- processes ------------------------------------------------------------------------
step "fake upstream on :$PORT_FAKE, worker A on :$PORT_A, worker B on :$PORT_B"
"$PY" -m tests.fakes.openai_upstream --port "$PORT_FAKE" --reply "$REPLY" >"$WORK/fake.log" 2>&1 &
PIDS+=($!)
for name in A B; do
    port=PORT_$name
    "$PY" -m uvicorn config.asgi:application --host 127.0.0.1 --port "${!port}" --workers 1 \
        --no-access-log >"$WORK/worker-$name.log" 2>&1 &
    PIDS+=($!)
done
"$PY" "$HELP" wait-http "$FAKE/fake/stats" 20 || fail "the fake upstream did not start"
"$PY" "$HELP" wait-http "$A/healthz" 30 || fail "worker A did not start"
"$PY" "$HELP" wait-http "$B/healthz" 30 || fail "worker B did not start"

# --- HTTP helpers -------------------------------------------------------------------
# call METHOD URL [JSON] [TOKEN] [CLIENT_IP]: the body lands in $WORK/body, the status in $STATUS.
call() {
    local method=$1 url=$2 data=${3:-} token=${4:-} ip=${5:-10.0.0.1}
    local args=(-sS -o "$WORK/body" -D "$WORK/headers" -w '%{http_code}' -X "$method"
        -H "X-Forwarded-For: $ip" --max-time 30)
    [ -n "$data" ] && args+=(-H 'Content-Type: application/json' --data "$data")
    [ -n "$token" ] && args+=(-H "Authorization: Bearer $token")
    STATUS=$(curl "${args[@]}" "$url") || fail "$method $url: curl failed"
}
expect() { # expect STATUS WHAT
    [ "$STATUS" = "$1" ] || fail "$2: HTTP $STATUS, expected $1; body: $(head -c 600 "$WORK/body")"
}
field() { "$PY" "$HELP" get "$1" <"$WORK/body"; }
expect_field() { # expect_field PATH VALUE WHAT
    local got
    got=$(field "$1") || fail "$3: no field $1"
    [ "$got" = "$2" ] || fail "$3: $1 is '$got', expected '$2'"
}
expect_error() { # expect_error STATUS CODE WHAT: the one error shape
    expect "$1" "$3"
    expect_field error.code "$2" "$3"
    field error.message >/dev/null || fail "$3: no error.message"
}

# --- probes --------------------------------------------------------------------------
step "probes: /healthz on A, /readyz on B"
call GET "$A/healthz"
expect 200 "GET /healthz"
expect_field status ok "GET /healthz"
call GET "$B/readyz"
expect 200 "GET /readyz"
expect_field database ok "GET /readyz"

# --- register on A, sign in on B ---------------------------------------------------
LOGIN="smoke-$(date +%s)-$RANDOM"
PASSWORD="correct-horse-$RANDOM-battery"
step "register $LOGIN on A"
call POST "$A/auth/register" "{\"login_id\": \"$LOGIN\", \"password\": \"$PASSWORD\", \"display_name\": \"Smoke\"}"
expect 201 "POST /auth/register"
expect_field user.login_id "$LOGIN" "register"
field access >/dev/null || fail "register: no access token"

step "log in on B"
call POST "$B/auth/login" "{\"login_id\": \"$LOGIN\", \"password\": \"$PASSWORD\"}"
expect 200 "POST /auth/login"
ACCESS=$(field access)
REFRESH=$(field refresh)
expect_field user.login_id "$LOGIN" "login"

call GET "$A/auth/me" "" "$ACCESS"
expect 200 "GET /auth/me on A with B's token"
expect_field login_id "$LOGIN" "GET /auth/me"

call GET "$A/api/wallet/" "" "$ACCESS"
expect 200 "GET /api/wallet/"
expect_field balance 100 "the sign-up bonus"
expect_field currency credits "GET /api/wallet/"

# --- top up by command ---------------------------------------------------------------
step "top up 250 credits with manage.py topup_wallet (then replay its key)"
KEY="smoke-topup-$LOGIN"
out=$("$PY" manage.py topup_wallet "$LOGIN" 250 --reason "smoke test top-up" --key "$KEY") ||
    fail "topup_wallet exited non-zero: $out"
grep -q "balance 350 credits" <<<"$out" || fail "topup_wallet printed '$out', expected balance 350"
out=$("$PY" manage.py topup_wallet "$LOGIN" 250 --reason "smoke test top-up" --key "$KEY") ||
    fail "topup_wallet (replay) exited non-zero: $out"
grep -q "nothing added" <<<"$out" || fail "replayed key: '$out' does not say nothing was added"
grep -q "balance 350 credits" <<<"$out" || fail "replayed key changed the balance: $out"
if "$PY" manage.py topup_wallet "$LOGIN" 0 --reason "zero" >"$WORK/zero.out" 2>&1; then
    fail "topup_wallet accepted an amount of 0"
fi

call GET "$B/api/wallet/" "" "$ACCESS"
expect 200 "GET /api/wallet/ after top-up"
expect_field balance 350 "balance after the top-up (and its replay)"
call GET "$B/api/wallet/transactions/" "" "$ACCESS"
expect 200 "GET /api/wallet/transactions/"
expect_field results.0.kind topup "newest ledger entry"
expect_field results.0.amount 250 "newest ledger entry"
expect_field results.1.kind bonus "first ledger entry"

# --- a session and a streamed reply -------------------------------------------------
step "create a session on A, stream a reply on B"
call POST "$A/api/sessions/" '{"category": "general", "title": "Smoke"}' "$ACCESS"
expect 201 "POST /api/sessions/"
SESSION=$(field id)

STATUS=$(curl -sS -N --max-time 30 -o "$WORK/stream.txt" -D "$WORK/stream.headers" -w '%{http_code}' \
    -X POST "$B/api/sessions/$SESSION/messages/" -H "Authorization: Bearer $ACCESS" \
    -H 'Content-Type: application/json' -H 'Accept: text/event-stream' \
    --data '{"content": "Hello from the smoke test"}') || fail "streaming POST: curl failed"
[ "$STATUS" = 200 ] || fail "streaming POST: HTTP $STATUS: $(head -c 600 "$WORK/stream.txt")"
grep -qi '^content-type: text/event-stream' "$WORK/stream.headers" ||
    fail "streaming POST: not text/event-stream: $(cat "$WORK/stream.headers")"
DONE=$("$PY" "$HELP" sse "$REPLY" <"$WORK/stream.txt") || fail "streamed reply: $(head -c 1200 "$WORK/stream.txt")"
COST=$("$PY" "$HELP" get cost <<<"$DONE")
BALANCE=$("$PY" "$HELP" get balance <<<"$DONE")
DELTAS=$("$PY" "$HELP" get delta_count <<<"$DONE")
[ "$BALANCE" -eq $((350 - COST)) ] || fail "done event: balance $BALANCE after a cost of $COST, expected $((350 - COST))"
[ "$("$PY" "$HELP" get usage.completion_tokens <<<"$DONE")" = "$DELTAS" ] ||
    fail "done event: completion tokens differ from the fake's $DELTAS chunks: $DONE"
echo "   $DELTAS deltas, cost $COST, balance $BALANCE"
curl -sS --max-time 5 "$FAKE/fake/stats" >"$WORK/body" || fail "fake stats"
expect_field requests 1 "the fake upstream's request count"
expect_field completed 1 "the fake upstream's completed streams"

step "history on A, wallet and ledger on A"
call GET "$A/api/sessions/$SESSION/messages/" "" "$ACCESS"
expect 200 "GET /api/sessions/{id}/messages/"
expect_field results.0.role user "history"
expect_field results.0.content "Hello from the smoke test" "history"
expect_field results.1.role assistant "history"
expect_field results.1.content "$REPLY" "history"
expect_field results.1.status complete "history"
expect_field results.1.cost "$COST" "history"
expect_field next null "history (one page)"
call GET "$A/api/sessions/$SESSION/" "" "$ACCESS"
expect 200 "GET /api/sessions/{id}/"
expect_field message_count 2 "session"
call GET "$A/api/wallet/" "" "$ACCESS"
expect_field balance "$BALANCE" "wallet after the reply"
call GET "$A/api/wallet/transactions/" "" "$ACCESS"
expect_field results.0.kind charge "newest ledger entry after the reply"
expect_field results.0.amount "-$COST" "the charge"

step "errors keep their shape with DEBUG off"
call GET "$B/api/sessions/00000000-0000-0000-0000-000000000000/" "" "$ACCESS"
expect_error 404 not_found "another (missing) session"
call GET "$A/api/wallet/"
expect_error 401 not_authenticated "no token"
call POST "$B/api/sessions/$SESSION/messages/" '{"content": ""}' "$ACCESS"
expect_error 400 validation_error "empty message"
grep -q Traceback "$WORK/body" && fail "a stack trace leaked"

# --- throttles shared through Redis -------------------------------------------------
# The rate is 5/min per client address and per login id, counted in Redis, so a client
# alternating between the workers gets five attempts in all, not five per worker.
step "throttle per client address across workers: 3 failed logins on A + 2 on B, the 6th is 429"
for worker in A A A B B; do
    call POST "${!worker}/auth/login" "{\"login_id\": \"ghost-$RANDOM$RANDOM\", \"password\": \"wrong-$RANDOM\"}" "" 10.9.0.1
    expect_error 401 invalid_credentials "failed login on worker $worker"
done
call POST "$B/auth/login" "{\"login_id\": \"ghost-$RANDOM$RANDOM\", \"password\": \"wrong\"}" "" 10.9.0.1
expect_error 429 throttled "6th login from one address (on worker B)"
grep -qi '^retry-after:' "$WORK/headers" || fail "429 without Retry-After"
call POST "$A/auth/login" "{\"login_id\": \"ghost-$RANDOM$RANDOM\", \"password\": \"wrong\"}" "" 10.9.0.1
expect_error 429 throttled "7th login from one address (on worker A)"

step "throttle per login id across workers: 5 addresses alternating A/B, then 429"
GHOST="ghost-$LOGIN"
for i in 1 2 3 4 5; do
    worker=$([ $((i % 2)) = 1 ] && echo A || echo B)
    call POST "${!worker}/auth/login" "{\"login_id\": \"$GHOST\", \"password\": \"wrong-$i\"}" "" "10.8.0.$i"
    expect_error 401 invalid_credentials "failed login $i for one login id on worker $worker"
done
call POST "$B/auth/login" "{\"login_id\": \"$GHOST\", \"password\": \"wrong\"}" "" 10.8.0.99
expect_error 429 throttled "6th login for one login id from a new address (on worker B)"

step "messages throttled per user across workers: 4/min in all, counted in Redis"
# Two messages so far (the streamed reply on B, the empty one on B); two more, one per worker.
for worker in A B; do
    call POST "${!worker}/api/sessions/$SESSION/messages/" '{"content": "Again"}' "$ACCESS"
    expect 200 "message on worker $worker within the rate"
done
call POST "$A/api/sessions/$SESSION/messages/" '{"content": "Once more"}' "$ACCESS"
expect_error 429 throttled "5th message in a minute (on worker A)"
grep -qi '^retry-after:' "$WORK/headers" || fail "message 429 without Retry-After"

# --- static files with DEBUG off ---------------------------------------------------------
step "static files and the admin with DEBUG off"
call GET "$B/static/admin/css/base.css"
expect 200 "GET /static/admin/css/base.css"
grep -qi '^content-type: text/css' "$WORK/headers" || fail "base.css is not text/css: $(cat "$WORK/headers")"
[ "$(wc -c <"$WORK/body")" -gt 1000 ] || fail "base.css is nearly empty"
call GET "$A/admin/login/"
expect 200 "GET /admin/login/"
grep -q 'static/admin/css/base.css' "$WORK/body" || fail "the admin login page does not link its CSS"
call GET "$A/api/schema/"
expect 200 "GET /api/schema/"

# --- log out on A: the refresh token is dead on B too -----------------------------------
step "log out on A; the refresh token is refused on B and on A"
call POST "$A/auth/logout" "{\"refresh\": \"$REFRESH\"}" "$ACCESS"
expect 204 "POST /auth/logout"
call POST "$B/auth/token/refresh" "{\"refresh\": \"$REFRESH\"}"
expect_error 401 token_not_valid "refresh after logout (worker B)"
call POST "$A/auth/token/refresh" "{\"refresh\": \"$REFRESH\"}"
expect_error 401 token_not_valid "refresh after logout (worker A)"

# --- the books ----------------------------------------------------------------------------
step "manage.py audit_wallets"
"$PY" manage.py audit_wallets || fail "audit_wallets found a mismatch"

for name in A B; do
    if grep -E 'Traceback|ERROR' "$WORK/worker-$name.log" >/dev/null; then
        fail "worker $name logged an error: $(grep -m3 -E 'Traceback|ERROR' "$WORK/worker-$name.log")"
    fi
done
