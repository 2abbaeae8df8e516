#!/bin/sh
# tlog-entries.sh: list the entries of an entry bundle with their indexes.
#
# usage: tlog-entries.sh [-x] BUNDLE [FIRST]
#
#   BUNDLE  an entry bundle file: tiles/<tenant>/tile/entries/<N>[.p/<W>]
#   FIRST   the index of its first entry (default: 256 * N, read from the path)
#   -x      print entries in hex (default: printable ASCII as is, "\" as "\\", any other
#           byte as \xHH)
#
# A bundle is (2-byte big-endian length || entry) repeated, 256 entries when full, W when
# partial. Prints "<index> <length> <entry>" per entry. Exit 1 when the bundle is malformed.

case $0 in */*) . "${0%/*}/lib.sh" ;; *) . ./lib.sh ;; esac

usage() { show_usage 3 13; }
MODE=text
while [ $# -gt 0 ]; do
  case $1 in
    -x) MODE=hex; shift ;;
    -*) usage ;;
    *) break ;;
  esac
done
[ $# -ge 1 ] && [ $# -le 2 ] || usage
B=$1
[ -f "$B" ] || die "cannot read bundle $B"
if [ $# -eq 2 ]; then
  FIRST=$2
  check_decimal "$FIRST" FIRST
else
  # tile/entries/x001/234.p/7 -> bundle 1234 -> first index 1234 * 256.
  FIRST=$(printf '%s\n' "$B" | awk '{
    p = index($0, "tile/entries/"); if (!p) { print 0; exit }
    s = substr($0, p + 13); sub(/\.p\/[0-9]+$/, "", s)
    n = split(s, seg, "/"); v = 0
    for (i = 1; i <= n; i++) { x = seg[i]; sub(/^x/, "", x); if (x !~ /^[0-9][0-9][0-9]$/) { print 0; exit }; v = v * 1000 + x }
    printf "%.0f\n", v * 256 }')
  need_decimal "$FIRST" "the first index, read from the path"
fi
make_tmp
if ! bundle_parse "$B" "$MODE" "$FIRST"; then
  # No reason means the output was cut short (e.g. piped into head): nothing to report.
  [ -s "$T/berr" ] && printf '%s: FAIL: %s is malformed: %s\n' "$PROG" "$B" "$(cat "$T/berr")" >&2
  exit 1
fi
n=$(cat "$T/bcount" 2>/dev/null)
need_decimal "$n" "the number of entries"
if [ "$n" -gt 256 ] || [ "$n" -eq 0 ]; then
  printf '%s: FAIL: %s holds %s entries, a bundle holds 1 to 256\n' "$PROG" "$B" "$n" >&2
  exit 1
fi
exit 0
