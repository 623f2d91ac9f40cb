# Shared helpers for the DR scripts; sourced, never run. Each script sets `set -euo pipefail` itself.
PG_BINDIR="${PG_BINDIR:-/usr/lib/postgresql/15/bin}"

log() { printf '%s %s: %s\n' "$(date -u +%Y-%m-%dT%H:%M:%SZ)" "${0##*/}" "$*" >&2; }
die() { printf '%s: error: %s\n' "${0##*/}" "$*" >&2; exit 1; }

# Any command that fails without handling ends the script with the line it failed on.
trap 'rc=$?; printf "%s: error: command failed (exit %d) at line %d: %s\n" "${0##*/}" "$rc" "$LINENO" "$BASH_COMMAND" >&2' ERR

need_bin() {
  local name
  for name in "$@"; do
    [ -x "$PG_BINDIR/$name" ] || die "$PG_BINDIR/$name not found (set PG_BINDIR to PostgreSQL 15's bin directory)"
  done
}

# Next WAL segment name after $1 (16 MiB segments: 256 per "log" id).
next_segment() {
  local tli=${1:0:8} log=$((16#${1:8:8})) seg=$((16#${1:16:8}))
  seg=$((seg + 1))
  if [ "$seg" -gt 255 ]; then seg=0; log=$((log + 1)); fi
  printf '%s%08X%08X' "$tli" "$log" "$seg"
}
