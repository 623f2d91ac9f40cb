#!/usr/bin/env bash
# Rejoin a failed old primary as a streaming replica of the new primary: pg_rewind it back to the
# point where the timelines forked, point it at the new primary, start it, and wait until it streams.
set -euo pipefail
. "$(dirname "$(readlink -f "$0")")/common.sh"

usage() {
  cat >&2 <<USAGE
usage: ${0##*/} -D DATADIR -s SOURCE_CONNINFO -n APPLICATION_NAME -p PORT [-S SLOT] [-t TIMEOUT]
  -D DATADIR          the old primary's data directory (its server must be stopped)
  -s SOURCE_CONNINFO  the new primary, e.g. 'host=pg1 port=5432 user=rewind dbname=postgres'
  -n APPLICATION_NAME this node's name, as listed in synchronous_standby_names
  -p PORT             this node's port, to check that it streams once started
  -S SLOT             replication slot on the new primary (created if missing)
  -t TIMEOUT          seconds to wait for streaming to start (default 60)
Run as the PostgreSQL OS user. The data directory needs data checksums or wal_log_hints = on.
USAGE
  exit 2
}

pgdata='' source='' name='' port='' slot='' timeout=60
while getopts "D:s:n:p:S:t:h" opt; do
  case $opt in
    D) pgdata=$OPTARG ;;
    s) source=$OPTARG ;;
    n) name=$OPTARG ;;
    p) port=$OPTARG ;;
    S) slot=$OPTARG ;;
    t) timeout=$OPTARG ;;
    *) usage ;;
  esac
done
if ! { [ -n "$pgdata" ] && [ -n "$source" ] && [ -n "$name" ] && [ -n "$port" ]; }; then usage; fi
need_bin pg_ctl pg_rewind psql
[ -f "$pgdata/PG_VERSION" ] || die "$pgdata is not a PostgreSQL data directory"
if "$PG_BINDIR/pg_ctl" -D "$pgdata" status >/dev/null 2>&1; then
  die "a server is running in $pgdata; stop it before rewinding"
fi

# pg_rewind copies the source's configuration files too (its port, its names); this node keeps its own.
saved=$(mktemp -d)
trap 'rm -rf "$saved"' EXIT
for conf in postgresql.conf postgresql.auto.conf pg_hba.conf pg_ident.conf; do
  [ ! -f "$pgdata/$conf" ] || cp -p "$pgdata/$conf" "$saved/"
done

# A freshly promoted primary records its new timeline in pg_control only at its next checkpoint;
# without one pg_rewind sees the same timeline on both sides and wrongly skips the rewind.
"$PG_BINDIR/psql" -X -q -v ON_ERROR_STOP=1 -d "$source" -c "CHECKPOINT" >/dev/null \
  || die "cannot run CHECKPOINT on the new primary ($source)"

log "rewinding $pgdata from '$source'"
# pg_rewind first runs crash recovery on a target that was killed, then copies what diverged.
"$PG_BINDIR/pg_rewind" --target-pgdata="$pgdata" --source-server="$source" \
  || die "pg_rewind failed; re-clone this node with pg_basebackup instead"
cp -p "$saved"/* "$pgdata/"

if [ -n "$slot" ]; then
  "$PG_BINDIR/psql" -X -q -v ON_ERROR_STOP=1 -d "$source" -c \
    "SELECT pg_create_physical_replication_slot('$slot', true) WHERE NOT EXISTS (SELECT 1 FROM pg_replication_slots WHERE slot_name = '$slot')" \
    >/dev/null || die "cannot create replication slot $slot on the new primary"
fi
touch "$pgdata/standby.signal"
cat >> "$pgdata/postgresql.auto.conf" <<CONF
# --- rejoined as a replica by ${0##*/} at $(date -u +%Y-%m-%dT%H:%M:%SZ) ---
primary_conninfo = '$source application_name=$name'
primary_slot_name = '$slot'
recovery_target_timeline = 'latest'
CONF

"$PG_BINDIR/pg_ctl" -D "$pgdata" -l "$pgdata/rejoin.log" -w -t "$timeout" start >/dev/null \
  || { tail -n 5 "$pgdata/rejoin.log" >&2; die "the rewound server did not start (see $pgdata/rejoin.log)"; }
deadline=$(( $(date +%s) + timeout ))
until [ "$("$PG_BINDIR/psql" -X -Atq -h 127.0.0.1 -p "$port" -d postgres -c 'SELECT status FROM pg_stat_wal_receiver' 2>/dev/null)" = "streaming" ]; do
  [ "$(date +%s)" -lt "$deadline" ] || die "$name did not start streaming within ${timeout}s (see $pgdata/rejoin.log)"
  sleep 0.2
done
log "$name rejoined and is streaming from the new primary"
