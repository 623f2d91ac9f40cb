#!/usr/bin/env bash
# archive_command: copy one completed WAL segment into the archive, durably and atomically.
# Exit 0 only once the file is safely stored; PostgreSQL keeps the segment and retries otherwise.
set -euo pipefail
. "$(dirname "$(readlink -f "$0")")/common.sh"

usage() { echo "usage: ${0##*/} WAL_PATH WAL_FILE ARCHIVE_DIR   (archive_command = '... \"%p\" \"%f\" /archive')" >&2; exit 2; }
[ $# -eq 3 ] || usage
src=$1 name=$2 archive=$3
[ -f "$src" ] || die "WAL file $src does not exist"
[ -d "$archive" ] || die "archive directory $archive does not exist"
dest="$archive/$name"

if [ -e "$dest" ]; then
  # Re-archiving after a crash between copy and acknowledgement is normal; a different file is not.
  if cmp -s "$src" "$dest"; then exit 0; fi
  die "$dest already exists with different content; refusing to overwrite (two clusters archiving to one place?)"
fi

tmp="$archive/.$name.tmp.$$"
trap 'rm -f "$tmp"' EXIT
cp "$src" "$tmp"
sync "$tmp"
mv "$tmp" "$dest"
sync "$archive"
