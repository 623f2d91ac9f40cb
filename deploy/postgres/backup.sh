#!/usr/bin/env bash
# Logical backup of the terminal's database: one pg_dump in custom format per run, verified by
# reading its table of contents back, with a SHA-256 beside it; dumps older than BACKUP_KEEP_DAYS
# are pruned only after the new one has been verified. Any failure exits non-zero, so the CronJob
# (deploy/k8s/base/backup-cronjob.yaml) shows it failed and the alert on failed jobs fires.
#
#   DATABASE_URL=postgres://user:password@host:5432/name BACKUP_DIR=/backups bash backup.sh
#
# This complements continuous WAL archiving (point-in-time recovery); restore steps are in
# docs/runbooks/incident.md.
set -euo pipefail

: "${DATABASE_URL:?set DATABASE_URL to postgres://user:password@host:port/name}"
: "${BACKUP_DIR:?set BACKUP_DIR to the directory that keeps the dumps}"
KEEP_DAYS="${BACKUP_KEEP_DAYS:-35}"
[[ "$KEEP_DAYS" =~ ^[0-9]+$ ]] || { echo "backup: BACKUP_KEEP_DAYS must be a whole number of days, got '$KEEP_DAYS'" >&2; exit 2; }
[ -d "$BACKUP_DIR" ] && [ -w "$BACKUP_DIR" ] || { echo "backup: $BACKUP_DIR is not a writable directory" >&2; exit 2; }

stamp="$(date -u +%Y%m%dT%H%M%SZ)"
name="terminal-${stamp}.dump"
partial="$BACKUP_DIR/.${name}.partial"
trap 'rm -f "$partial"' EXIT

started=$(date +%s)
# --no-owner/--no-privileges: the dump restores into any role layout (roles are created by their own SQL).
pg_dump --dbname="$DATABASE_URL" --format=custom --compress=6 --no-owner --no-privileges --file="$partial"
# A dump whose table of contents cannot be read back is not a backup.
entries=$(pg_restore --list "$partial" | grep -cv '^;')
[ "$entries" -gt 0 ] || { echo "backup: $name has an empty table of contents" >&2; exit 1; }
mv "$partial" "$BACKUP_DIR/$name"
(cd "$BACKUP_DIR" && sha256sum "$name" > "$name.sha256")

pruned=0
while IFS= read -r -d '' old; do
  rm -f "$old" "$old.sha256"
  pruned=$((pruned + 1))
done < <(find "$BACKUP_DIR" -maxdepth 1 -name 'terminal-*.dump' ! -name "$name" -mtime "+$KEEP_DAYS" -print0)

size=$(stat -c %s "$BACKUP_DIR/$name")
printf '{"level": "INFO", "logger": "backup", "message": "backup written", "file": "%s", "bytes": %d, "entries": %d, "pruned": %d, "seconds": %d}\n' \
  "$name" "$size" "$entries" "$pruned" "$(( $(date +%s) - started ))"
