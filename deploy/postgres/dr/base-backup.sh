#!/usr/bin/env bash
# Take a base backup (plain format, WAL streamed into it, SHA-256 manifest), verify it with
# pg_verifybackup, and only then give it its final name. Prints the backup's path on stdout.
# A backup that fails verification is kept as <name>.failed for investigation and the exit is 1.
set -euo pipefail
. "$(dirname "$(readlink -f "$0")")/common.sh"

usage() {
  cat >&2 <<USAGE
usage: ${0##*/} -d CONNINFO -o BACKUP_ROOT [-l LABEL]
  -d CONNINFO     libpq connection to the server to back up (a replication-capable role)
  -o BACKUP_ROOT  directory receiving one sub-directory per backup, named by UTC time
  -l LABEL        backup label (default: terminal-<UTC time>)
Run as the PostgreSQL OS user. Exits non-zero if the backup or its verification fails.
USAGE
  exit 2
}

conninfo='' root='' label=''
while getopts "d:o:l:h" opt; do
  case $opt in
    d) conninfo=$OPTARG ;;
    o) root=$OPTARG ;;
    l) label=$OPTARG ;;
    *) usage ;;
  esac
done
if ! { [ -n "$conninfo" ] && [ -n "$root" ]; }; then usage; fi
need_bin pg_basebackup pg_verifybackup
[ -d "$root" ] || die "backup root $root does not exist"

stamp=$(date -u +%Y%m%dT%H%M%SZ)
label=${label:-terminal-$stamp}
dest="$root/$stamp"
[ ! -e "$dest" ] || die "$dest already exists"
partial="$dest.partial"
rm -rf "$partial"

log "base backup of '$conninfo' into $partial"
started=$(date +%s)
"$PG_BINDIR/pg_basebackup" -d "$conninfo" -D "$partial" -F plain -X stream \
  --checkpoint=fast --label="$label" --manifest-checksums=SHA256 --no-password \
  || die "pg_basebackup failed; nothing was kept ($partial removed)"

log "verifying $partial with pg_verifybackup"
if ! "$PG_BINDIR/pg_verifybackup" "$partial" >&2; then
  mv "$partial" "$dest.failed"
  die "pg_verifybackup FAILED for $dest.failed: this backup must not be used"
fi

mv "$partial" "$dest"
start_wal=$(sed -n 's/^START WAL LOCATION: .*(file \([0-9A-F]\{24\}\)).*/\1/p' "$dest/backup_label")
log "backup ok: $dest ($(du -sh "$dest" | cut -f1), $(( $(date +%s) - started )) s, starts at WAL $start_wal)"
echo "$dest"
