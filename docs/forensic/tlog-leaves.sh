#!/bin/sh
# tlog-leaves.sh: re-hash log entries and compare each leaf hash with the level-0 tile.
#
# usage: tlog-leaves.sh [-q] [-c CHECKPOINT] LOGDIR [FIRST [LAST]]
#
#   LOGDIR      a log's public directory (tiles/<tenant>: holds checkpoint and tile/)
#   FIRST LAST  the entry indexes to check, inclusive (default: every entry of the tree)
#   -c FILE     take the tree size from this checkpoint (default LOGDIR/checkpoint), e.g. an
#               older one from checkpoints/<tenant>/log/
#   -q          print only mismatches and the summary
#
# For each entry prints "<index> <leaf hash in hex> ok", where the leaf hash is
# SHA-256(0x00 || entry) (RFC 6962 2.1) and "ok" means hash <index mod 256> of tile
# tile/0/<index div 256> is the same. Exit 0 when all match, 1 when any does not (or a file
# is missing or malformed), 2 on a usage error.

case $0 in */*) . "${0%/*}/lib.sh" ;; *) . ./lib.sh ;; esac

usage() { show_usage 3 16; }
QUIET=0
CP=
while [ $# -gt 0 ]; do
  case $1 in
    -q) QUIET=1; shift ;;
    -c) [ $# -ge 2 ] || usage; CP=$2; shift 2 ;;
    -h | --help) usage ;;
    -*) usage ;;
    *) break ;;
  esac
done
[ $# -ge 1 ] && [ $# -le 3 ] || usage
LOG=$1
[ -d "$LOG" ] || die "$LOG is not a directory"
CP=${CP:-$LOG/checkpoint}
pick_sha256
make_tmp
read_checkpoint "$CP"
SIZE=$CP_SIZE
if [ "$SIZE" -eq 0 ]; then say "the tree of $CP is empty (size 0): no entries"; exit 0; fi
FIRST=${2:-0}
LAST=${3:-$((SIZE - 1))}
[ -n "${3:-}" ] || [ -z "${2:-}" ] || LAST=$FIRST
check_decimal "$FIRST" FIRST
check_decimal "$LAST" LAST
[ "$LAST" -lt "$SIZE" ] || die "entry $LAST is not in the tree (size $SIZE, from $CP)"
[ "$FIRST" -le "$LAST" ] || die "FIRST ($FIRST) is after LAST ($LAST)"

BAD=0
CHECKED=0
b=$((FIRST / 256))
while [ $((b * 256)) -le "$LAST" ]; do
  w=$((SIZE - b * 256))
  [ "$w" -gt 256 ] && w=256
  tile_rel entries "$b" "$w"
  WANT=$TREL
  find_tile "$LOG" entries "$b" "$w"
  BREL=$TREL BFILE=$TFILE BFB=$TFALLBACK BW=$TWIDTH
  find_tile "$LOG" 0 "$b" "$w"
  TILEREL=$TREL TILEFILE=$TFILE
  if [ -z "$BFILE" ]; then
    say "FAIL: bundle $BREL is missing (entries $((b * 256)) to $((b * 256 + w - 1)))"
    BAD=$((BAD + 1)); b=$((b + 1)); continue
  fi
  if [ -z "$TILEFILE" ]; then
    say "FAIL: tile $TILEREL is missing (entries $((b * 256)) to $((b * 256 + w - 1)))"
    BAD=$((BAD + 1)); b=$((b + 1)); continue
  fi
  [ "$BFB" = 1 ] && [ "$QUIET" = 0 ] && say "note: $WANT is gone, reading the first $w entries of $BREL"
  rm -f "$T/berr"
  if ! bundle_parse "$BFILE" leaf $((b * 256)) >"$T/leaf.in"; then
    say "FAIL: bundle $BREL is malformed: $(cat "$T/berr" 2>/dev/null)"
    BAD=$((BAD + 1)); b=$((b + 1)); continue
  fi
  n=$(cat "$T/bcount" 2>/dev/null)
  need_decimal "$n" "the number of entries in $BREL"
  if [ "$n" -ne "$BW" ]; then
    say "FAIL: bundle $BREL holds $n entries, its name says $BW (the tree of size $SIZE implies $w)"
    BAD=$((BAD + 1)); b=$((b + 1)); continue
  fi
  hash_file "$T/leaf.in" "$T/leaf.h"
  if ! tile_hex "$TILEFILE" "$T/t0"; then
    say "FAIL: tile $TILEREL is not a whole number of 32-byte hashes"
    BAD=$((BAD + 1)); b=$((b + 1)); continue
  fi
  # Indexes are printed with %.0f: busybox awk's %d stops at 2^31.
  awk -v b="$b" -v w="$w" -v first="$FIRST" -v last="$LAST" -v quiet="$QUIET" -v tile="$TILEREL" -v bundle="$BREL" '
    function hash(h) { return length(h) == 64 && h !~ /[^0-9a-f]/ }
    NR == FNR { t[FNR] = $0; nt = FNR; next }
    FNR <= w {
      i = b * 256 + FNR - 1
      if (i < first || i > last) next
      checked++
      if (!hash($0)) { printf "%.0f MISMATCH: internal: the leaf hash came out as \"%s\"\n", i, $0; bad++ }
      else if (!(FNR in t) || !hash(t[FNR])) { printf "%.0f %s MISMATCH: %s has no hash %d\n", i, $0, tile, FNR - 1; bad++ }
      else if (t[FNR] "" != $0 "") {  # as strings: a hex hash can look like a number (123e45...)
        printf "%.0f %s MISMATCH: entry %d of %s hashes to this, but hash %d of %s is %s\n", i, $0, FNR - 1, bundle, FNR - 1, tile, t[FNR]; bad++ }
      else if (!quiet) printf "%.0f %s ok\n", i, $0
    }
    END {
      if (nt < w) { printf "FAIL: %s holds %d hashes, the tree implies %d\n", tile, nt, w; bad++ }
      print checked + 0, bad + 0 > countfile
    }' countfile="$T/counts" "$T/t0" "$T/leaf.h" || die 'awk failed'
  read -r c bd <"$T/counts" || die 'awk failed'
  need_decimal "$c" "the number of entries checked"
  need_decimal "$bd" "the number of mismatches"
  CHECKED=$((CHECKED + c)); BAD=$((BAD + bd))
  b=$((b + 1))
done

# Every entry of the range must have been compared: a count that is short is never an "ok".
if [ "$BAD" -eq 0 ] && [ "$CHECKED" -ne $((LAST - FIRST + 1)) ]; then
  say "FAIL: only $CHECKED of the $((LAST - FIRST + 1)) entries $FIRST to $LAST could be checked"
  BAD=1
fi
if [ "$BAD" -eq 0 ]; then
  say "ok: the leaf hashes of entries $FIRST to $LAST ($CHECKED entries) match tile/0 (tree size $SIZE)"
  exit 0
fi
say "FAIL: $BAD problem(s) in entries $FIRST to $LAST of the tree of size $SIZE"
printf '%s: FAIL: %s problem(s): leaf hashes do not match tile/0 (see above)\n' "$PROG" "$BAD" >&2
exit 1
