#!/usr/bin/env bash
# Promote a standby to primary (manual region failover; Patroni does this itself inside a region).
# Refuses while the old primary still accepts connections, unless -f: two writable primaries
# (split brain) lose data in a way no later step can repair.
set -euo pipefail
. "$(dirname "$(readlink -f "$0")")/common.sh"

usage() {
  cat >&2 <<USAGE
usage: ${0##*/} -D DATADIR [-o OLD_PRIMARY_CONNINFO] [-f] [-t TIMEOUT]
  -D DATADIR               the standby's data directory on this host
  -o OLD_PRIMARY_CONNINFO  the old primary; promotion is refused while it answers
  -f                       promote even though the old primary answers (only once it is fenced)
  -t TIMEOUT               seconds to wait for the promotion (default 60)
Run as the PostgreSQL OS user. Exits non-zero unless the server left recovery.
USAGE
  exit 2
}

pgdata='' old='' force=0 timeout=60
while getopts "D:o:ft:h" opt; do
  case $opt in
    D) pgdata=$OPTARG ;;
    o) old=$OPTARG ;;
    f) force=1 ;;
    t) timeout=$OPTARG ;;
    *) usage ;;
  esac
done
[ -n "$pgdata" ] || usage
need_bin pg_ctl pg_controldata pg_isready
[ -f "$pgdata/PG_VERSION" ] || die "$pgdata is not a PostgreSQL data directory"

state=$("$PG_BINDIR/pg_controldata" "$pgdata" | sed -n 's/^Database cluster state: *//p')
[ "$state" = "in archive recovery" ] || die "$pgdata is not a standby (cluster state: $state)"

if [ -n "$old" ] && "$PG_BINDIR/pg_isready" -q -t 3 -d "$old"; then
  [ "$force" -eq 1 ] || die "the old primary ($old) still accepts connections: fence it (stop it, cut its network) first, or pass -f once it is fenced"
  log "warning: old primary still answers; promoting anyway (-f)"
fi

started=$(date +%s%N)
"$PG_BINDIR/pg_ctl" -D "$pgdata" -w -t "$timeout" promote >/dev/null \
  || die "pg_ctl promote failed or timed out after ${timeout}s"
state=$("$PG_BINDIR/pg_controldata" "$pgdata" | sed -n 's/^Database cluster state: *//p')
[ "$state" = "in production" ] || die "promotion did not complete (cluster state: $state)"
log "promoted $pgdata in $(( ($(date +%s%N) - started) / 1000000 )) ms; it now accepts writes"
