#!/usr/bin/env bash
# Real mail peers for the interop suite (pytest -m interop), on loopback only:
#   Postfix (one private instance, a loopback address per scenario), Dovecot (SASL auth only),
#   Knot DNS (test zones on 127.0.0.1:5300 and [::1]:5300), PostgreSQL (store tests).
#
#   scripts/peers.sh start    install what is missing (apt-get), start every peer; idempotent
#   scripts/peers.sh stop     stop every peer by its PID; idempotent
#   scripts/peers.sh status   one line per peer; exit 0 only when all are running
#   scripts/peers.sh env      shell exports for the tests: eval "$(scripts/peers.sh env)"
#
# All state (configuration, certificates, queues, logs, PID files) lives in
# $SMTPCHECK_PEERS_DIR (default /tmp/smtpcheck-peers). Needs root (Postfix's master does).
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
TEMPLATES=$HERE/peers
STATE=${SMTPCHECK_PEERS_DIR:-/tmp/smtpcheck-peers}
STATE=${STATE%/}
MARKER=$STATE/.smtpcheck-peers
DNS_PORT=5300
PG_PORT=55432
PG_USER=smtpcheck
PG_DB=smtpcheck_test
TEST_USER=alice@good.test
# A fixture password for a throwaway account that exists only in this private Dovecot.
TEST_PASSWORD=interop-Secret-4711
PEERS=(knot dovecot postfix postgres)
# libnet-ssleay-perl: swaks only recommends it, and --tls needs it.
APT_PACKAGES=(postfix dovecot-core knot knot-dnsutils swaks libnet-ssleay-perl postgresql openssl)

PYTHON=${SMTPCHECK_PEERS_PYTHON:-python3}
POSTFIX_ETC=$STATE/postfix/etc
PG_JOB= # the background PostgreSQL start, while it runs

say() { echo "peers.sh: $*" >&2; }
die() {
    say "$*"
    exit 1
}

# ------------------------------------------------------------------------------ helpers

check_state_path() {
    [[ $STATE == /* ]] || die "SMTPCHECK_PEERS_DIR must be an absolute path (got '$STATE')"
    [[ $STATE =~ ^[A-Za-z0-9_./-]+$ ]] || die "SMTPCHECK_PEERS_DIR may only hold [A-Za-z0-9_./-]"
    # Unix socket paths (Dovecot, Knot, PostgreSQL) are limited to 107 bytes.
    ((${#STATE} <= 60)) || die "SMTPCHECK_PEERS_DIR is too long for Unix socket paths (max 60)"
}

need_root() {
    ((EUID == 0)) || die "must run as root (Postfix's master and the privileged ports need it)"
}

# The PID in FILE (first line, digits only), or nothing.
pid_from() {
    [[ -r $1 ]] || return 0
    head -n1 "$1" 2>/dev/null | tr -dc '0-9' || true
}

# Is PID alive and running the program we expect (guards against a recycled PID)? A zombie
# counts as stopped: it has exited, only its parent (here: PID 1) has not reaped it yet.
pid_is() {
    local pid=$1 comm=$2 stat
    [[ -n $pid ]] && stat=$(cat "/proc/$pid/stat" 2>/dev/null) || return 1
    [[ $stat =~ ^[0-9]+\ \((.*)\)\ ([A-Za-z]) ]] || return 1
    [[ ${BASH_REMATCH[1]} == "$comm" && ${BASH_REMATCH[2]} != Z ]]
}

pid_gone() { ! pid_is "$@"; }

pidfile_of() {
    case $1 in
    knot) echo "$STATE/knot/run/knot.pid" ;;
    dovecot) echo "$STATE/dovecot/run/master.pid" ;;
    postfix) echo "$STATE/postfix/queue/pid/master.pid" ;;
    postgres) echo "$STATE/postgres/data/postmaster.pid" ;;
    esac
}

comm_of() {
    case $1 in
    knot) echo knotd ;;
    dovecot) echo dovecot ;;
    postfix) echo master ;;
    postgres) echo postgres ;;
    esac
}

logfile_of() {
    case $1 in
    knot) echo "$STATE/knot/knot.log" ;;
    dovecot) echo "$STATE/dovecot/dovecot.log" ;;
    postfix) echo "$STATE/postfix/maillog" ;;
    postgres) echo "$STATE/postgres/postgres.log" ;;
    esac
}

running_pid() {
    local pid
    pid=$(pid_from "$(pidfile_of "$1")")
    if pid_is "$pid" "$(comm_of "$1")"; then echo "$pid"; fi
}

# Fail loudly: say what broke, show the peer's own log, stop what was started.
fail_peer() {
    local peer=$1 why=$2 extra=${3:-}
    say "FAILED to start $peer: $why"
    for log in "$(logfile_of "$peer")" $extra; do
        if [[ -s $log ]]; then
            echo "----- last lines of $log -----" >&2
            tail -n 40 "$log" >&2
        fi
    done
    # The PostgreSQL start runs in a background subshell: the main shell stops everything,
    # once that subshell has finished (so that nothing starts after the stop).
    if ((BASH_SUBSHELL == 0)); then
        [[ -z $PG_JOB ]] || wait "$PG_JOB" 2>/dev/null || true
        cmd_stop >/dev/null 2>&1 || true
    fi
    exit 1
}

# Wait until the command succeeds (up to SECONDS_MAX, polling every 0.1 s).
wait_for() {
    local seconds_max=$1
    shift
    local tries=$((seconds_max * 10))
    while ((tries-- > 0)); do
        if "$@" >/dev/null 2>&1; then return 0; fi
        sleep 0.1
    done
    return 1
}

render() {
    sed -e "s|@STATE@|$STATE|g" -e "s|@DNS_PORT@|$DNS_PORT|g" "$1" >"$2"
}

pg_bindir() {
    local dir
    for dir in $(printf '%s\n' /usr/lib/postgresql/*/bin | sort -V -r); do
        [[ -x $dir/initdb ]] && {
            echo "$dir"
            return 0
        }
    done
    dir=$(dirname "$(command -v initdb 2>/dev/null || echo /nonexistent/initdb)")
    [[ -x $dir/initdb ]] && echo "$dir"
}

# ------------------------------------------------------------------------------ install

ensure_packages() {
    local missing=() pkg
    for pkg in "${APT_PACKAGES[@]}"; do
        if [[ $(dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null || true) != "install ok installed" ]]; then
            missing+=("$pkg")
        fi
    done
    if ! "$PYTHON" -c 'import cryptography' 2>/dev/null; then
        PYTHON=/usr/bin/python3
        "$PYTHON" -c 'import cryptography' 2>/dev/null || missing+=(python3-cryptography)
    fi
    ((${#missing[@]} == 0)) && return 0
    say "installing ${missing[*]}"
    # "No configuration": the package must not set up (or start) a system-wide Postfix
    # listening on *:25, which would take the scenario addresses' port 25.
    echo "postfix postfix/main_mailer_type select No configuration" | debconf-set-selections
    apt-get update -q >&2 || die "apt-get update failed"
    DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends "${missing[@]}" >&2 ||
        die "apt-get install ${missing[*]} failed"
}

# The peers listen on 127.0.20.0/24 (Linux routes all of 127/8 to lo) and on ::1.
check_loopback() {
    "$PYTHON" - <<'EOF' || die "cannot bind 127.0.20.1 and ::1 (is IPv6 disabled on lo?)"
import socket
for family, address in ((socket.AF_INET, "127.0.20.1"), (socket.AF_INET6, "::1")):
    with socket.socket(family, socket.SOCK_STREAM) as s:
        s.bind((address, 0))
EOF
}

# ------------------------------------------------------------------------------ state

fresh_state() {
    if [[ -e $STATE ]]; then
        [[ -e $MARKER ]] || die "$STATE exists and is not a peers folder (no $MARKER); not touching it"
        rm -rf "$STATE"
    fi
    # 0755: the unprivileged peer users (postfix, dovecot, postgres) must reach their files.
    install -d -m 0755 "$STATE" "$STATE/certs" "$STATE/knot" "$STATE/knot/run" "$STATE/knot/db" \
        "$STATE/knot/zones" "$STATE/dovecot" "$STATE/postfix" "$POSTFIX_ETC" \
        "$STATE/postfix/queue"
    # Postfix's data directory belongs to its mail_owner; the queue directory to root.
    install -d -m 0700 -o postfix -g postfix "$STATE/postfix/data"
    touch "$MARKER"
}

make_certs() {
    "$PYTHON" "$TEMPLATES/certs.py" "$STATE/certs" \
        "good=good:smtp.good.test,smtp6.good.test,127.0.20.1,::1" \
        "expired=expired:expired.good.test" \
        "wrongname=good:mail.other.test" \
        "selfsigned=selfsigned:selfsigned.good.test" \
        "nochain=nochain:nochain.good.test" \
        "legacytls=good:legacytls.good.test" \
        "authbeforetls=good:authbeforetls.good.test" \
        "noauth=good:noauth.good.test" \
        "ptrmismatch=good:ptrmismatch.good.test" \
        "sslonly=good:sslonly.good.test" \
        >"$STATE/certs/certs.log" 2>&1 || {
        cat "$STATE/certs/certs.log" >&2
        die "could not write the test certificates"
    }
}

# ------------------------------------------------------------------------------ peers

dns_answers() {
    kdig @127.0.0.1 -p "$DNS_PORT" +time=1 +retry=0 +short SOA good.test | grep -q 'ns.good.test'
}

start_knot() {
    local zone
    render "$TEMPLATES/knot.conf.in" "$STATE/knot/knot.conf"
    for zone in "$TEMPLATES"/zones/*.zone; do cp "$zone" "$STATE/knot/zones/"; done
    knotc -c "$STATE/knot/knot.conf" conf-check >"$STATE/knot/conf-check.log" 2>&1 ||
        fail_peer knot "configuration rejected" "$STATE/knot/conf-check.log"
    knotd -c "$STATE/knot/knot.conf" -d >"$STATE/knot/stderr.log" 2>&1 ||
        fail_peer knot "knotd exited with $?" "$STATE/knot/stderr.log"
}

start_dovecot() {
    local hash
    render "$TEMPLATES/dovecot.conf.in" "$STATE/dovecot/dovecot.conf"
    hash=$(openssl passwd -5 "$TEST_PASSWORD")
    install -m 0640 -g dovecot /dev/null "$STATE/dovecot/users"
    echo "$TEST_USER:{SHA256-CRYPT}$hash" >"$STATE/dovecot/users"
    dovecot -c "$STATE/dovecot/dovecot.conf" >"$STATE/dovecot/stderr.log" 2>&1 ||
        fail_peer dovecot "dovecot exited with $?" "$STATE/dovecot/stderr.log"
}

start_postfix() {
    render "$TEMPLATES/postfix-main.cf.in" "$POSTFIX_ETC/main.cf"
    render "$TEMPLATES/postfix-master.cf.in" "$POSTFIX_ETC/master.cf"
    postfix -c "$POSTFIX_ETC" start >"$STATE/postfix/stderr.log" 2>&1 ||
        fail_peer postfix "postfix start exited with $?" "$STATE/postfix/stderr.log"
}

# Every inet listener in master.cf, as host:port (IPv6 in brackets).
postfix_listeners() {
    awk '/^[0-9[][^ ]*:[0-9]+[ \t]+inet[ \t]/ {print $1}' "$TEMPLATES/postfix-master.cf.in"
}

# Connect to each listener once (TCP only: proves the sockets are bound by master).
listeners_accept() {
    "$PYTHON" - "$@" <<'EOF'
import socket, sys
for spec in sys.argv[1:]:
    host, _, port = spec.rpartition(":")
    with socket.create_connection((host.strip("[]"), int(port)), timeout=1):
        pass
EOF
}

start_postgres() {
    local bin
    bin=$(pg_bindir) || true
    [[ -n $bin ]] || fail_peer postgres "no PostgreSQL server binaries (initdb) found"
    install -d -m 0700 -o postgres -g postgres "$STATE/postgres" "$STATE/postgres/data" \
        "$STATE/postgres/run"
    runuser -u postgres -- "$bin/initdb" -D "$STATE/postgres/data" -A trust -U postgres \
        -E UTF8 --locale=C --no-sync --no-instructions >"$STATE/postgres/initdb.log" 2>&1 ||
        fail_peer postgres "initdb failed" "$STATE/postgres/initdb.log"
    # Durability is pointless for a throwaway test database; speed is not.
    runuser -u postgres -- "$bin/pg_ctl" -D "$STATE/postgres/data" -l "$STATE/postgres/postgres.log" \
        -w -t 30 -o "-c listen_addresses=127.0.0.1 -p $PG_PORT -k $STATE/postgres/run -c fsync=off -c synchronous_commit=off -c full_page_writes=off" \
        start >"$STATE/postgres/pg_ctl.log" 2>&1 ||
        fail_peer postgres "pg_ctl start failed" "$STATE/postgres/pg_ctl.log"
    "$bin/psql" -X -q -h 127.0.0.1 -p "$PG_PORT" -U postgres -d postgres -v ON_ERROR_STOP=1 \
        -c "CREATE ROLE $PG_USER LOGIN" -c "CREATE DATABASE $PG_DB OWNER $PG_USER" \
        >"$STATE/postgres/psql.log" 2>&1 ||
        fail_peer postgres "could not create role $PG_USER and database $PG_DB" "$STATE/postgres/psql.log"
}

# ------------------------------------------------------------------------------ stop

signal_and_wait() {
    local peer=$1 pid=$2 signal=$3 comm
    comm=$(comm_of "$peer")
    kill "-$signal" "$pid" 2>/dev/null || true
    if ! wait_for 15 pid_gone "$pid" "$comm"; then
        say "$peer (pid $pid) ignored SIG$signal; sending SIGKILL"
        kill -KILL "$pid" 2>/dev/null || true
        wait_for 5 pid_gone "$pid" "$comm" || say "$peer (pid $pid) is still there"
    fi
}

# Postfix's children carry MAIL_CONFIG=<our config dir>: find any that outlived master.
postfix_leftovers() {
    local env_file pid
    for env_file in /proc/[0-9]*/environ; do
        pid=${env_file#/proc/}
        pid=${pid%/environ}
        if tr '\0' '\n' 2>/dev/null <"$env_file" | grep -qxF "MAIL_CONFIG=$POSTFIX_ETC"; then
            echo "$pid"
        fi
    done
}

cmd_stop() {
    check_state_path
    local peer pid
    # Reverse order of start: Postfix before the Dovecot socket it uses.
    for peer in postgres postfix dovecot knot; do
        pid=$(running_pid "$peer")
        if [[ -n $pid ]]; then
            # PostgreSQL: SIGINT is the "fast" shutdown; the others stop cleanly on SIGTERM.
            if [[ $peer == postgres ]]; then
                signal_and_wait "$peer" "$pid" INT
            else
                signal_and_wait "$peer" "$pid" TERM
            fi
            say "stopped $peer (pid $pid)"
        fi
        if [[ $peer == postfix ]] && [[ -d $POSTFIX_ETC ]]; then
            for pid in $(postfix_leftovers); do
                kill -TERM "$pid" 2>/dev/null && say "stopped leftover postfix process $pid"
            done
        fi
    done
    return 0
}

# ------------------------------------------------------------------------------ commands

all_running() {
    local peer
    for peer in "${PEERS[@]}"; do
        [[ -n $(running_pid "$peer") ]] || return 1
    done
    dns_answers && [[ -S $STATE/dovecot/run/auth-postfix ]]
}

cmd_start() {
    check_state_path
    need_root
    if [[ -e $MARKER ]] && all_running; then
        say "already running in $STATE (use 'stop' then 'start' to rebuild)"
        write_env
        return 0
    fi
    local t0=$SECONDS
    cmd_stop
    ensure_packages
    check_loopback
    fresh_state
    make_certs

    # PostgreSQL's initdb is the slow part: run it alongside the mail peers.
    (start_postgres) >"$STATE/postgres-start.log" 2>&1 &
    PG_JOB=$!

    start_knot
    start_dovecot
    wait_for 10 test -S "$STATE/dovecot/run/auth-postfix" ||
        fail_peer dovecot "no auth socket at $STATE/dovecot/run/auth-postfix" "$STATE/dovecot/stderr.log"
    start_postfix
    wait_for 10 dns_answers || fail_peer knot "no DNS answer on 127.0.0.1:$DNS_PORT" "$STATE/knot/stderr.log"
    # shellcheck disable=SC2046
    wait_for 15 listeners_accept $(postfix_listeners) ||
        fail_peer postfix "not every listener accepts connections" "$STATE/postfix/stderr.log"

    if ! wait "$PG_JOB"; then
        PG_JOB=
        cat "$STATE/postgres-start.log" >&2
        cmd_stop >/dev/null 2>&1 || true
        exit 1
    fi
    PG_JOB=

    local peer
    for peer in "${PEERS[@]}"; do
        [[ -n $(running_pid "$peer") ]] || fail_peer "$peer" "not running after start"
    done
    write_env
    say "all peers running in $STATE ($((SECONDS - t0)) s)"
}

cmd_status() {
    check_state_path
    local peer pid rc=0
    for peer in "${PEERS[@]}"; do
        pid=$(running_pid "$peer")
        if [[ -n $pid ]]; then
            printf '%-9s running (pid %s)\n' "$peer" "$pid"
        else
            printf '%-9s stopped\n' "$peer"
            rc=1
        fi
    done
    if [[ -n $(running_pid knot) ]] && ! dns_answers; then
        echo "knot      not answering on 127.0.0.1:$DNS_PORT"
        rc=1
    fi
    return $rc
}

env_lines() {
    cat <<EOF
export SMTPCHECK_PEERS_DIR=$STATE
export SMTPCHECK_TEST_DNS=127.0.0.1:$DNS_PORT
export SMTPCHECK_TEST_CA_BUNDLE=$STATE/certs/ca-bundle.pem
export SMTPCHECK_TEST_SMTP_USER=$TEST_USER
export SMTPCHECK_TEST_SMTP_PASSWORD=$TEST_PASSWORD
export SMTPCHECK_TEST_POSTGRES_URL=postgresql+asyncpg://$PG_USER@127.0.0.1:$PG_PORT/$PG_DB
EOF
}

# The tests read this file when the variables are not in their environment.
write_env() {
    env_lines >"$STATE/env"
}

cmd_env() {
    check_state_path
    env_lines
}

# One start or stop at a time (two test runs starting the peers at once would fight). The
# flock process holds the lock; -o keeps its descriptor out of this script, so the daemons
# started here do not inherit (and keep holding) the lock.
with_lock() {
    check_state_path
    if [[ ${SMTPCHECK_PEERS_LOCKED:-} == "$STATE" ]]; then
        "cmd_$1"
        return
    fi
    local rc=0
    SMTPCHECK_PEERS_LOCKED=$STATE flock -o -w 120 -E 75 "$STATE.lock" "$0" "$1" || rc=$?
    ((rc != 75)) || die "another peers.sh still holds $STATE.lock after 120 s"
    exit "$rc"
}

case ${1:-} in
start) with_lock start ;;
stop) with_lock stop ;;
status) cmd_status ;;
env) cmd_env ;;
*)
    sed -n '2,12p' "$0" | sed 's/^# \{0,1\}//' >&2
    exit 2
    ;;
esac
