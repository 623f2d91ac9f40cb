#!/usr/bin/env bash
# Archive-lag check for monitoring and cron: exits 1 when the oldest WAL segment still waiting to be
# archived is older than MAX_AGE seconds, or when the last archive attempt failed. Prints one line
# of key=value facts either way.
set -euo pipefail
. "$(dirname "$(readlink -f "$0")")/common.sh"

usage() {
  cat >&2 <<USAGE
usage: ${0##*/} -d CONNINFO [-m MAX_AGE_SECONDS]
  -d CONNINFO  the primary (a superuser or a member of pg_monitor)
  -m MAX_AGE   oldest unarchived segment allowed, in seconds (default 300, the RPO)
USAGE
  exit 2
}

conninfo='' max_age=300
while getopts "d:m:h" opt; do
  case $opt in
    d) conninfo=$OPTARG ;;
    m) max_age=$OPTARG ;;
    *) usage ;;
  esac
done
[ -n "$conninfo" ] || usage
need_bin psql

row=$("$PG_BINDIR/psql" -X -Atq -F ' ' -d "$conninfo" -v ON_ERROR_STOP=1 -c "
  SELECT count(*),
         coalesce(extract(epoch FROM now() - min(modification))::int, 0),
         (SELECT failed_count FROM pg_stat_archiver),
         (SELECT coalesce(last_failed_time > coalesce(last_archived_time, '-infinity'), false) FROM pg_stat_archiver)
  FROM pg_ls_archive_statusdir() WHERE name LIKE '%.ready'") || die "cannot query $conninfo"
read -r pending oldest failed failing <<<"$row"
echo "pending_segments=$pending oldest_pending_seconds=$oldest failed_count=$failed last_attempt_failed=$failing"
[ "$oldest" -le "$max_age" ] || die "archive lag ${oldest}s exceeds ${max_age}s: the WAL archive is behind the RPO"
[ "$failing" = "f" ] || die "the last archive attempt failed (failed_count=$failed); see the server log"
