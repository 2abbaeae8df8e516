#!/bin/sh
# tlog-root.sh: recompute a log's root hash from its tiles and compare it with the checkpoint.
#
# usage: tlog-root.sh [-c CHECKPOINT] [-e] LOGDIR
#
#   LOGDIR   a log's public directory (tiles/<tenant>: holds checkpoint and tile/)
#   -c FILE  check the tree of this checkpoint (default LOGDIR/checkpoint), e.g. an older one
#            from checkpoints/<tenant>/log/ (its partial tiles must still exist)
#   -e       also re-hash every entry of every bundle against tile/0 (tlog-leaves.sh)
#
# Two checks, each from the bytes of the tiles alone:
#  1. every full tile at level L hashes (8 rounds of RFC 6962 node hashing) to its hash in
#     the tile at level L+1, so no tile can change without changing the level above;
#  2. the root: the tree of size s splits into perfect subtrees, one per set bit of s, and
#     the bits 8L..8L+7 of s are exactly the hashes of the partial tile at level L. Hashing
#     those groups and folding them right to left gives MTH(D[0:s]), the checkpoint's root.
# Exit 0 when everything matches, 1 when anything does not, 2 on a usage error.

case $0 in */*) . "${0%/*}/lib.sh" ;; *) . ./lib.sh ;; esac

usage() { show_usage 3 18; }
CP=
ENTRIES=0
while [ $# -gt 0 ]; do
  case $1 in
    -c) [ $# -ge 2 ] || usage; CP=$2; shift 2 ;;
    -e) ENTRIES=1; shift ;;
    -*) usage ;;
    *) break ;;
  esac
done
[ $# -eq 1 ] || usage
LOG=$1
[ -d "$LOG" ] || die "$LOG is not a directory"
CP=${CP:-$LOG/checkpoint}
pick_sha256
make_tmp
read_checkpoint "$CP"
SIZE=$CP_SIZE
say "checkpoint  $CP"
say "origin      $CP_ORIGIN"
say "tree size   $SIZE"
say "root hash   $CP_ROOT_B64 (hex $CP_ROOT)"

BAD=0
problem() { say "FAIL: $*"; BAD=$((BAD + 1)); }

# 1. Read every tile the tree implies, level by level, into $T/lvl.<L> (one hash per line).
L=0
n=$SIZE
while [ "$n" -gt 0 ]; do
  full=$((n / 256))
  w=$((n % 256))
  : >"$T/lvl.$L"
  k=0
  while [ "$k" -le "$full" ]; do
    if [ "$k" -eq "$full" ]; then
      [ "$w" -gt 0 ] || break
      tw=$w
    else
      tw=256
    fi
    find_tile "$LOG" "$L" "$k" "$tw"
    if [ -z "$TFILE" ]; then
      problem "tile $TREL is missing"
      # Keep the positions of the hashes that follow: fill with a marker that matches nothing.
      awk -v w="$tw" 'BEGIN { for (i = 0; i < w; i++) print "missing" }' >>"$T/lvl.$L"
    elif ! tile_hex "$TFILE" "$T/tile"; then
      problem "tile $TREL is not a whole number of 32-byte hashes"
      awk -v w="$tw" 'BEGIN { for (i = 0; i < w; i++) print "missing" }' >>"$T/lvl.$L"
    else
      got=$(wc -l <"$T/tile")
      [ "$TFALLBACK" = 1 ] && say "note: the partial tile is gone, using the first $tw hashes of $TREL"
      if [ "$got" -ne "$TWIDTH" ]; then
        problem "tile $TREL holds $got hashes, its name says $TWIDTH (the tree of size $SIZE implies $tw)"
      fi
      awk -v w="$tw" 'NR <= w { print } END { for (i = NR; i < w; i++) print "missing" }' "$T/tile" >>"$T/lvl.$L"
    fi
    k=$((k + 1))
  done
  eval "FULL_$L=$full W_$L=$w N_$L=$n"
  say "level $L      $n hashes: $full full tile(s)$( [ "$w" -gt 0 ] && printf ', a partial tile of %d' "$w")"
  L=$((L + 1))
  n=$full
done
TOP=$((L - 1))

# 2. Every full tile at level L must hash to its hash at level L+1.
L=0
while [ "$L" -lt "$TOP" ]; do
  eval "full=\$FULL_$L"
  awk -v n="$((full * 256))" 'NR <= n' "$T/lvl.$L" >"$T/fulls"
  perfect_roots "$T/fulls" "$T/roots" 8
  U=$((L + 1))
  eval "nu=\$N_$U"
  # Each computed root against the hash above it; any line that is not a hash, or a count that
  # is off, is a failure too (a tool that printed nothing must not look like "all equal").
  awk -v L="$L" -v U="$U" -v nu="$nu" -v want="$full" '
    function npath(n,   s) { s = sprintf("%03d", n % 1000); n = int(n / 1000); while (n > 0) { s = sprintf("x%03d/%s", n % 1000, s); n = int(n / 1000) }; return s }
    NR == FNR { up[FNR] = $0; next }
    {
      seen++
      if (length($0) != 64 || $0 ~ /[^0-9a-f]/) { printf "FAIL: internal: the root of tile/%d/%s came out as \"%s\"\n", L, npath(FNR - 1), $0; bad++; next }
      if (up[FNR] "" == $0 "") next  # as strings: a hex hash can look like a number (123e45...)
      k = FNR - 1; t = int(k / 256); wu = nu - t * 256; if (wu > 256) wu = 256
      printf "FAIL: tile/%d/%s hashes to %s, but hash %d of tile/%d/%s%s is %s: one of the two tiles is damaged\n", L, npath(k), $0, k % 256, U, npath(t), (wu < 256 ? ".p/" wu : ""), up[FNR]
      bad++
    }
    END {
      if (seen != want) { printf "FAIL: internal: %d tile roots computed at level %d, expected %d\n", seen, L, want; bad++ }
      print bad + 0 > countfile
    }' countfile="$T/count" "$T/lvl.$U" "$T/roots" || die 'awk failed'
  nbad=$(cat "$T/count")
  need_decimal "$nbad" "the number of mismatched tiles"
  BAD=$((BAD + nbad))
  say "level $L      every full tile hashes to its hash at level $U$( [ "$nbad" -gt 0 ] && printf ' (except the ones above)')"
  L=$U
done

# 3. The root: perfect subtrees from the partial tiles, highest level first, largest first.
: >"$T/parts"
L=$TOP
while [ "$L" -ge 0 ]; do
  eval "full=\$FULL_$L w=\$W_$L"
  start=$((full * 256))
  bit=7
  while [ "$bit" -ge 0 ]; do
    g=$((1 << bit))
    if [ $((w & g)) -ne 0 ]; then
      awk -v a="$start" -v g="$g" 'NR > a && NR <= a + g' "$T/lvl.$L" >"$T/group"
      perfect_roots "$T/group" "$T/groot" "$bit"
      cat "$T/groot" >>"$T/parts"
      start=$((start + g))
    fi
    bit=$((bit - 1))
  done
  L=$((L - 1))
done
# Fold right to left: root = node(p1, node(p2, ... node(p[k-1], p[k]))).
nparts=$(wc -l <"$T/parts")
# One perfect subtree per set bit of the size.
bits=0
n=$SIZE
while [ "$n" -gt 0 ]; do bits=$((bits + n % 2)); n=$((n / 2)); done
[ "$nparts" -eq "$bits" ] || die "internal: $nparts perfect subtrees computed, the size $SIZE has $bits set bits"
if [ "$SIZE" -eq 0 ]; then
  ROOT=$EMPTY_ROOT
else
  i=$nparts
  awk -v i="$i" 'NR == i' "$T/parts" >"$T/acc"
  while [ "$i" -gt 1 ]; do
    i=$((i - 1))
    { awk -v i="$i" 'NR == i' "$T/parts"; cat "$T/acc"; } >"$T/pair"
    pair_round "$T/pair" "$T/acc"
  done
  ROOT=$(cat "$T/acc")
fi
need_hex64 "$ROOT" "the recomputed root"
ROOT_B64=$(awk "$AWKLIB"'BEGIN { print hexb64("'"$ROOT"'") }')
[ ${#ROOT_B64} -eq 44 ] || die "internal: the recomputed root in base64 came out as '$ROOT_B64'"
say "recomputed  $ROOT_B64 (hex $ROOT), from $nparts perfect subtree(s)"

# Both sides are well-formed here (read_checkpoint checked the checkpoint's).
if is_hex64 "$CP_ROOT" && [ "$ROOT" = "$CP_ROOT" ]; then
  say "ok: the tiles hash to the checkpoint's root"
else
  problem "the tiles hash to $ROOT_B64, the checkpoint says $CP_ROOT_B64"
fi

if [ "$ENTRIES" = 1 ] && [ "$SIZE" -gt 0 ]; then
  say "re-hashing every entry against tile/0:"
  sh "$HERE/tlog-leaves.sh" -q -c "$CP" "$LOG" || BAD=$((BAD + 1))
fi

if [ "$BAD" -gt 0 ]; then
  printf '%s: FAIL: %d problem(s) in the tree of %s (see above)\n' "$PROG" "$BAD" "$CP" >&2
  exit 1
fi
exit 0
