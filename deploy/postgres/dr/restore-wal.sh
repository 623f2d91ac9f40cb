#!/usr/bin/env bash
# restore_command: fetch one WAL file from the archive. A missing file exits 1, which PostgreSQL
# reads as "not archived (yet)". Any other failure exits 255: PostgreSQL treats a status above 125 as
# fatal and stops recovery, rather than taking an unreadable segment for the end of the archive.
set -euo pipefail
. "$(dirname "$(readlink -f "$0")")/common.sh"

usage() { echo "usage: ${0##*/} ARCHIVE_DIR WAL_FILE DEST_PATH   (restore_command = '... /archive \"%f\" \"%p\"')" >&2; exit 2; }
[ $# -eq 3 ] || usage
archive=$1 name=$2 dest=$3
[ -d "$archive" ] || { echo "${0##*/}: error: archive directory $archive does not exist" >&2; exit 255; }
[ -f "$archive/$name" ] || exit 1
cp "$archive/$name" "$dest" || { echo "${0##*/}: error: cannot copy $archive/$name to $dest" >&2; exit 255; }
