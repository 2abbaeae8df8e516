#!/bin/sh
# tlog-locate.sh: where an entry and its hashes live, for a tree of a given size.
#
# usage: tlog-locate.sh INDEX SIZE
#
# Prints the bundle that holds entry INDEX, its position there, the level-0 tile that holds
# its leaf hash, and, level by level, the tile holding the hash of the subtree above it, with
# the widths a tree of SIZE entries gives them (partial tiles get ".p/<W>").

case $0 in */*) . "${0%/*}/lib.sh" ;; *) . ./lib.sh ;; esac

[ $# -eq 2 ] || show_usage 3 8
check_decimal "$1" INDEX
check_decimal "$2" SIZE
I=$1
S=$2
[ "$I" -lt "$S" ] || die "entry $I is not in a tree of size $S (indexes 0 to $((S - 1)))"
b=$((I / 256))
w=$((S - b * 256)); [ "$w" -gt 256 ] && w=256
tile_rel entries "$b" "$w"
say "entry $I of a tree of size $S:"
say "  bundle      $TREL  (entry $((I % 256)) of $w; skip $((I % 256)) length-prefixed entries)"
tile_rel 0 "$b" "$w"
say "  leaf hash   $TREL  (hash $((I % 256)): bytes $((I % 256 * 32)) to $((I % 256 * 32 + 31)))"
L=1
span=256
while [ $((S / span)) -gt 0 ]; do
  n=$((S / span))      # hashes at level L
  h=$((I / span))      # the level-L hash whose subtree holds the entry
  t=$((h / 256))
  tw=$((n - t * 256)); [ "$tw" -gt 256 ] && tw=256
  if [ "$h" -ge "$n" ]; then
    say "  level $L     none: the entry is in the right edge of the tree, not yet under a full level-$((L - 1)) tile"
    break
  fi
  tile_rel "$L" "$t" "$tw"
  say "  level $L     $TREL  (hash $((h % 256)): the root of entries $((h * span)) to $((h * span + span - 1)))"
  L=$((L + 1))
  span=$((span * 256))
done
