#!/usr/bin/env bash
# Point-in-time restore: a verified base backup plus the WAL archive, replayed up to a target time,
# into a scratch data directory, which is then started as a stand-alone server (archiving off, no
# upstream) for checks. Fails loudly, and leaves no server running, if the backup does not verify,
# the archive has a gap, or recovery ends before reaching the target.
set -euo pipefail
here=$(dirname "$(readlink -f "$0")")
. "$here/common.sh"

usage() {
  cat >&2 <<USAGE
usage: ${0##*/} -b BACKUP_DIR -a ARCHIVE_DIR -t TARGET_TIME -D SCRATCH_DIR -p PORT [-T TIMEOUT] [-n]
  -b BACKUP_DIR   a base backup made by base-backup.sh (plain format with backup_manifest)
  -a ARCHIVE_DIR  the WAL archive written by archive-wal.sh
  -t TARGET_TIME  stop replay before the first commit after this time, e.g. '2026-11-25 10:15:00+00'
  -D SCRATCH_DIR  new data directory (must not exist or be empty); never a live cluster's
  -p PORT         port for the restored server (listens on 127.0.0.1 only)
  -T TIMEOUT      seconds allowed for recovery (default 600)
  -n              skip the archive continuity check (PostgreSQL's own check still stops a short replay)
Run as the PostgreSQL OS user. On success the restored server is left running on PORT.
USAGE
  exit 2
}

backup='' archive='' target='' scratch='' port='' timeout=600 check_archive=1
while getopts "b:a:t:D:p:T:nh" opt; do
  case $opt in
    b) backup=$OPTARG ;;
    a) archive=$OPTARG ;;
    t) target=$OPTARG ;;
    D) scratch=$OPTARG ;;
    p) port=$OPTARG ;;
    T) timeout=$OPTARG ;;
    n) check_archive=0 ;;
    *) usage ;;
  esac
done
if ! { [ -n "$backup" ] && [ -n "$archive" ] && [ -n "$target" ] && [ -n "$scratch" ] && [ -n "$port" ]; }; then usage; fi
[ "$(id -u)" -ne 0 ] || die "run as the PostgreSQL OS user, not root"
need_bin pg_verifybackup pg_ctl pg_isready
[ -f "$backup/backup_manifest" ] || die "$backup has no backup_manifest: not a verifiable base backup"
[ -f "$backup/backup_label" ] || die "$backup has no backup_label"
[ -d "$archive" ] || die "archive directory $archive does not exist"
if [ -e "$scratch" ] && [ -n "$(ls -A "$scratch")" ]; then die "$scratch is not empty; refusing to restore over it"; fi

log "verifying $backup"
"$PG_BINDIR/pg_verifybackup" --quiet "$backup" || die "pg_verifybackup FAILED for $backup: restore aborted"

start_wal=$(sed -n 's/^START WAL LOCATION: .*(file \([0-9A-F]\{24\}\)).*/\1/p' "$backup/backup_label")
[ -n "$start_wal" ] || die "cannot read the start WAL segment from $backup/backup_label"

if [ "$check_archive" -eq 1 ]; then
  # Every segment of the backup's timeline, from its start to the newest archived one, must exist
  # (in the archive or in the backup itself): a hole would end replay early at that point.
  tli=${start_wal:0:8}
  last=$( (ls "$archive"; ls "$backup/pg_wal") | grep -E "^${tli}[0-9A-F]{16}$" | sort | tail -n1 || true)
  [ -n "$last" ] || die "no WAL segment of timeline $tli in $archive"
  seg=$start_wal checked=0
  while :; do
    if [ ! -f "$archive/$seg" ] && [ ! -f "$backup/pg_wal/$seg" ]; then
      die "WAL archive has a gap: segment $seg is missing (needed between $start_wal and $last); restore aborted"
    fi
    checked=$((checked + 1))
    [ "$seg" = "$last" ] && break
    seg=$(next_segment "$seg")
  done
  log "archive continuous on timeline $tli: $checked segment(s) from $start_wal to $last"
fi

mkdir -p "$scratch"
chmod 700 "$scratch"
cp -a "$backup/." "$scratch/"
rm -f "$scratch/standby.signal" "$scratch/backup_manifest" "$scratch/postmaster.pid"
touch "$scratch/recovery.signal"
cat >> "$scratch/postgresql.auto.conf" <<CONF
# --- point-in-time restore by ${0##*/} at $(date -u +%Y-%m-%dT%H:%M:%SZ) ---
restore_command = '$here/restore-wal.sh "$archive" "%f" "%p"'
recovery_target_time = '$target'
recovery_target_inclusive = on
recovery_target_action = 'promote'
# A scratch copy must never push WAL into the production archive nor follow or feed production.
archive_mode = off
primary_conninfo = ''
primary_slot_name = ''
synchronous_standby_names = ''
hot_standby = off
port = $port
listen_addresses = '127.0.0.1'
unix_socket_directories = ''
CONF

logfile="$scratch/restore.log"
log "replaying WAL to $target (timeout ${timeout}s, log $logfile)"
started=$(date +%s)
fail() {
  "$PG_BINDIR/pg_ctl" -D "$scratch" -m immediate -w stop >/dev/null 2>&1 || true
  grep -E "FATAL|PANIC|recovery ended|could not" "$logfile" | tail -n 5 >&2 || true
  die "restore FAILED: $1 (see $logfile); this copy is unusable"
}
"$PG_BINDIR/pg_ctl" -D "$scratch" -l "$logfile" -w -t "$timeout" start >/dev/null || fail "the server did not start"
# With hot_standby off the server accepts connections only once recovery reached the target and
# promoted; if replay ends short of the target PostgreSQL exits with a FATAL instead. (pg_ctl -w
# already returns once recovery starts, so it cannot tell the two apart.)
deadline=$((started + timeout))
until "$PG_BINDIR/pg_isready" -q -h 127.0.0.1 -p "$port"; do
  "$PG_BINDIR/pg_ctl" -D "$scratch" status >/dev/null 2>&1 || fail "the server exited before reaching $target"
  [ "$(date +%s)" -lt "$deadline" ] || fail "recovery did not finish within ${timeout}s"
  sleep 0.2
done
stop_line=$(grep -E "recovery stopping (before|after)" "$logfile" | tail -n1 || true)
if [ -z "$stop_line" ]; then
  "$PG_BINDIR/pg_ctl" -D "$scratch" -m fast stop >/dev/null 2>&1 || true
  die "restore FAILED: the server started but never reported stopping at $target (see $logfile)"
fi
log "restored in $(( $(date +%s) - started )) s: ${stop_line#*LOG:  }"
log "restored server running on 127.0.0.1:$port, data directory $scratch"
