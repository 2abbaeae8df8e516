# lib.sh: shared functions of the tlog forensic scripts. Sourced, never run.
#
# POSIX sh only. Tools: od, awk, printf, and one SHA-256 program (sha256sum, or openssl dgst
# -sha256, or shasum -a 256, or BSD sha256), plus cat/cp/mkdir/mv/rm/wc. Tested under dash with
# GNU coreutils and gawk --posix, and under busybox's sh and applets alone (whose awk has no
# exponentiation and whose printf %d stops at 2^31: neither is used). Hashes travel between the
# tools as lowercase hex, one per line.
#
# The scripts fail closed: every value they compare (sizes, hashes, counts) is checked to be
# well-formed before it is compared, and a tool that fails or prints nothing is an error, never
# an empty value that happens to equal another empty value.
#
# How bytes get hashed without a SHA-256 library: awk turns the bytes of each message into a
# printf format of octal escapes ("\000\141..."), the shell's printf builtin writes each message
# to a small file, and one SHA-256 process hashes up to 1000 such files at a time. Files are
# used (not pipes) so that one process can hash many messages; on a slow disk point TMPDIR at
# a RAM file system (the scripts pick /dev/shm by themselves when TMPDIR is unset).

LC_ALL=C
export LC_ALL
PROG=${0##*/}

# Exit codes: 0 all checks passed, 1 something does not verify, 2 usage or environment error,
# 3 (tlog-checkpoint.sh) decoded but nothing could be verified.
die() {
  printf '%s: %s\n' "$PROG" "$*" >&2
  exit 2
}

say() { printf '%s\n' "$*"; }

# is_hex64 V: V is 64 lowercase hex digits (a SHA-256 hash). is_decimal V: a canonical decimal.
is_hex64() {
  case $1 in *[!0-9a-f]*) return 1 ;; esac
  [ ${#1} -eq 64 ]
}
is_decimal() {
  case $1 in '' | *[!0-9]* | 0?*) return 1 ;; esac
}

# need_hex64 V WHAT / need_decimal V WHAT: dies (exit 2: the tools misbehaved) unless V is
# well-formed. For values the scripts computed themselves, never for input being checked.
need_hex64() { is_hex64 "$1" || die "internal: $2 is not a 64-digit hex hash: '$1' (a tool failed?)"; }
need_decimal() { is_decimal "$1" || die "internal: $2 is not a decimal number: '$1' (a tool failed?)"; }

has() { command -v "$1" >/dev/null 2>&1; }

# Sets SHA256 to a command that prints the SHA-256 of each file argument (hex somewhere on
# its line). TLOG_SHA256=sha256sum|openssl|shasum|sha256 forces one.
pick_sha256() {
  case ${TLOG_SHA256:-} in
    sha256sum) SHA256=sha256sum ;;
    openssl) SHA256='openssl dgst -sha256' ;;
    shasum) SHA256='shasum -a 256' ;;
    sha256) SHA256=sha256 ;;
    '')
      if has sha256sum; then SHA256=sha256sum
      elif has openssl; then SHA256='openssl dgst -sha256'
      elif has shasum; then SHA256='shasum -a 256'
      elif has sha256; then SHA256=sha256
      else die 'no SHA-256 program found: install sha256sum (coreutils) or openssl'
      fi ;;
    *) die "TLOG_SHA256 must be sha256sum, openssl, shasum or sha256, not $TLOG_SHA256" ;;
  esac
  set -- $SHA256
  has "$1" || die "the SHA-256 program $1 is not installed"
}

# Creates the work directory $T (removed on exit).
make_tmp() {
  _base=${TMPDIR:-}
  if [ -z "$_base" ]; then
    if [ -d /dev/shm ] && [ -w /dev/shm ]; then _base=/dev/shm; else _base=/tmp; fi
  fi
  # mkdir is atomic: a name in use (another run, or one killed before its cleanup) is skipped,
  # never removed.
  _i=0
  until mkdir -m 700 "$_base/tlog-forensic.$$.$_i" 2>/dev/null; do
    _i=$((_i + 1))
    [ "$_i" -lt 100 ] || die "cannot create a work directory in $_base (set TMPDIR)"
  done
  T=$_base/tlog-forensic.$$.$_i
  mkdir "$T/h" || die "cannot create a work directory in $T"
  trap 'rm -rf "$T"' EXIT
  trap 'exit 130' INT TERM HUP
}

# awk functions shared by the scripts (prepend to a program):
#   ESC[hh]      the printf octal escape of the byte with hex value hh
#   OCT[v]       the same for the decimal byte value v
#   hexesc(h)    a hex string as a printf format of octal escapes
#   b64hex(s)    base64 (standard alphabet, padded) to hex; "" if malformed
#   hexb64(h)    hex to base64
#   hexnum(h)    a big-endian hex string as a number (exact below 2^53)
#   utc(t)       POSIX seconds as YYYY-MM-DDTHH:MM:SSZ (proleptic Gregorian, no date(1))
AWKLIB='
BEGIN {
  for (i = 0; i < 256; i++) { ESC[sprintf("%02x", i)] = sprintf("\\%03o", i); OCT[i] = sprintf("\\%03o", i) }
  B64 = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"
  HEXD = "0123456789abcdef"
  # Powers of two by multiplication: busybox awk has no "^" (built without math support).
  P2[0] = 1; for (i = 1; i <= 24; i++) P2[i] = P2[i - 1] * 2
}
function hexesc(h,   i, s) { s = ""; for (i = 1; i < length(h); i += 2) s = s ESC[substr(h, i, 2)]; return s }
function b64hex(s,   i, c, v, bits, nb, out, pad) {
  out = ""; bits = 0; nb = 0; pad = 0
  if (length(s) % 4 != 0) return ""
  for (i = 1; i <= length(s); i++) {
    c = substr(s, i, 1)
    if (c == "=") { pad++; continue }
    if (pad > 0) return ""
    v = index(B64, c) - 1
    if (v < 0) return ""
    bits = bits * 64 + v; nb += 6
    if (nb >= 8) { nb -= 8; out = out sprintf("%02x", int(bits / P2[nb])); bits = bits % P2[nb] }
  }
  if (pad > 2 || bits != 0) return ""
  return out
}
function hexb64(h,   i, n, v, out, bits, nb) {
  out = ""; bits = 0; nb = 0
  for (i = 1; i < length(h); i += 2) {
    bits = bits * 256 + (index(HEXD, substr(h, i, 1)) - 1) * 16 + index(HEXD, substr(h, i + 1, 1)) - 1; nb += 8
    while (nb >= 6) { nb -= 6; v = int(bits / P2[nb]); out = out substr(B64, v + 1, 1); bits = bits % P2[nb] }
  }
  if (nb == 2) out = out substr(B64, bits * 16 + 1, 1) "=="
  if (nb == 4) out = out substr(B64, bits * 4 + 1, 1) "="
  return out
}
function hexnum(h,   i, n) { n = 0; for (i = 1; i <= length(h); i++) n = n * 16 + index(HEXD, substr(h, i, 1)) - 1; return n }
function utc(t,   d, s, z, era, doe, yoe, y, doy, mp, dd, m) {
  d = int(t / 86400); s = t - d * 86400
  z = d + 719468; era = int((z >= 0 ? z : z - 146096) / 146097)
  doe = z - era * 146097; yoe = int((doe - int(doe / 1460) + int(doe / 36524) - int(doe / 146096)) / 365)
  y = yoe + era * 400; doy = doe - (365 * yoe + int(yoe / 4) - int(yoe / 100)); mp = int((5 * doy + 2) / 153)
  dd = doy - int((153 * mp + 2) / 5) + 1; m = mp < 10 ? mp + 3 : mp - 9; if (m <= 2) y++
  return sprintf("%04d-%02d-%02dT%02d:%02d:%02dZ", y, m, dd, int(s / 3600), int(s % 3600 / 60), s % 60)
}
'

# hash_file IN OUT: IN has one message per line, written as a printf format of octal escapes;
# OUT gets the hex SHA-256 of each, in order.
hash_file() {
  awk -v cmd="$SHA256" -v chunk=1000 '
    function flush(   i) { if (n == 0) return; printf "%s", cmd; for (i = 1; i <= n; i++) printf " %d", i; printf "\n"; n = 0 }
    { n++; printf "printf '\''%s'\'' >%d\n", $0, n; if (n == chunk) flush() }
    END { flush() }' "$1" >"$T/hash.sh" || die 'awk failed'
  (cd "$T/h" && . ../hash.sh) >"$T/hash.out" || die "$SHA256 failed"
  awk -v want="$(wc -l <"$1")" '
    { for (i = NF; i >= 1; i--) if (length($i) == 64 && $i !~ /[^0-9a-f]/) { print $i; n++; next } }
    END { if (n != want + 0) exit 1 }' "$T/hash.out" >"$2" || die "could not read the output of $SHA256"
}

# pair_round IN OUT: IN has an even number of hex hashes; OUT gets, for each consecutive pair
# (L, R), the RFC 6962 interior node hash SHA-256(0x01 || L || R).
pair_round() {
  awk "$AWKLIB"'NR % 2 == 1 { l = $0; next } { print "\\001" hexesc(l) hexesc($0) } END { if (NR % 2) exit 1 }' "$1" >"$T/pairs" ||
    die "internal: odd number of hashes in $1"
  hash_file "$T/pairs" "$2"
}

# perfect_roots IN OUT K: IN holds groups of 2^K consecutive hashes; OUT gets each group's
# Merkle root (K rounds of pairing).
perfect_roots() {
  cp "$1" "$T/pr.0" 2>/dev/null || awk '{ print }' "$1" >"$T/pr.0"
  _k=0
  while [ "$_k" -lt "$3" ]; do
    pair_round "$T/pr.$_k" "$T/pr.$((_k + 1))"
    rm -f "$T/pr.$_k"
    _k=$((_k + 1))
  done
  mv "$T/pr.$_k" "$2"
}

# npath N: sets NPATH to the c2sp.org/tlog-tiles path form of N (1234067 -> x001/x234/067).
pad3() { case $1 in ?) P3=00$1 ;; ??) P3=0$1 ;; *) P3=$1 ;; esac; }
npath() {
  _n=$1
  pad3 $((_n % 1000)); NPATH=$P3; _n=$((_n / 1000))
  while [ "$_n" -gt 0 ]; do pad3 $((_n % 1000)); NPATH=x$P3/$NPATH; _n=$((_n / 1000)); done
}

# tile_rel LEVEL N WIDTH: sets TREL to tile/<L>/<N>[.p/<W>] (LEVEL "entries" for a bundle).
tile_rel() {
  npath "$2"
  TREL=tile/$1/$NPATH
  [ "$3" -lt 256 ] && TREL=$TREL.p/$3
  :
}

# tile_hex FILE OUT: the hashes of a tile file, one hex hash per line. Fails (status 1) when the
# file is not a whole number of 32-byte hashes; dies when od fails or does not print exactly
# the file's bytes (its marker line "od-failed" reaches awk, which accepts only hex bytes).
tile_hex() {
  _size=$(wc -c <"$1") || die "cannot read $1"
  { od -An -v -tx1 "$1" 2>/dev/null || echo od-failed; } | awk -v size="$_size" '
    { for (i = 1; i <= NF; i++) { if ($i !~ /^[0-9a-f][0-9a-f]$/) { bad = 1; exit 2 }; s = s $i; if (++n % 32 == 0) { print s; s = "" } } }
    END { if (bad || n != size + 0) exit 2; if (n % 32 != 0) exit 1 }' >"$2"
  case $? in 0) return 0 ;; 1) return 1 ;; *) die "od failed, or did not print the bytes of $1 in hex" ;; esac
}

# read_checkpoint FILE: sets CP_ORIGIN, CP_SIZE, CP_ROOT_B64 and CP_ROOT (hex) from the first
# three lines of a checkpoint note; dies with a reason when they are malformed.
read_checkpoint() {
  [ -r "$1" ] || die "cannot read checkpoint $1"
  awk "$AWKLIB"'
    NR == 1 { o = $0 }
    NR == 2 { s = $0 }
    NR == 3 { r = $0; h = b64hex(r) }
    END {
      if (NR < 3) { print "bad=too few lines"; exit }
      if (o == "") { print "bad=empty origin line"; exit }
      if (s !~ /^(0|[1-9][0-9]*)$/) { print "bad=size line is not a canonical decimal"; exit }
      if (length(h) != 64) { print "bad=root line is not base64 of 32 bytes"; exit }
      printf "size=%s\nroot64=%s\nroot=%s\norigin=%s\n", s, r, h, o
    }' "$1" >"$T/cp.vars"
  CP_BAD=; CP_SIZE=; CP_ROOT=; CP_ROOT_B64=; CP_ORIGIN=
  [ -s "$T/cp.vars" ] || die "awk failed to read checkpoint $1"
  while IFS= read -r _l; do
    case $_l in
      bad=*) CP_BAD=${_l#bad=} ;;
      size=*) CP_SIZE=${_l#size=} ;;
      root64=*) CP_ROOT_B64=${_l#root64=} ;;
      root=*) CP_ROOT=${_l#root=} ;;
      origin=*) CP_ORIGIN=${_l#origin=} ;;
    esac
  done <"$T/cp.vars"
  # What the awk program checked, checked again here: a value that is empty or malformed
  # (whatever the reason) never reaches a comparison.
  if [ -z "$CP_BAD" ]; then
    if ! is_decimal "$CP_SIZE"; then CP_BAD="size line is not a canonical decimal"
    elif ! is_hex64 "$CP_ROOT"; then CP_BAD="root line is not base64 of 32 bytes"
    elif [ -z "$CP_ROOT_B64" ]; then CP_BAD="empty root line"
    elif [ -z "$CP_ORIGIN" ]; then CP_BAD="empty origin line"
    fi
  fi
  if [ -n "$CP_BAD" ]; then
    printf '%s: FAIL: checkpoint %s: %s\n' "$PROG" "$1" "$CP_BAD" >&2
    exit 1
  fi
  :
}

EMPTY_ROOT=e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855

# bundle_parse FILE MODE FIRST: decodes an entry bundle, (u16 big-endian length || entry)*.
#   MODE leaf: one line per entry, "\000" followed by the entry, as printf octal escapes
#              (the RFC 6962 leaf hash input);
#   MODE text: "<index> <length> <entry with bytes outside printable ASCII as \xHH>";
#   MODE hex:  "<index> <length> <entry in hex>".
# Indexes start at FIRST. Writes the number of entries to $T/bcount. Fails (status 1, reason
# in $T/berr) when the bundle is truncated or holds an empty entry, or od did not print exactly
# the file's bytes.
bundle_parse() {
  _size=$(wc -c <"$1") || die "cannot read $1"
  { od -An -v -tu1 "$1" 2>/dev/null || echo od-failed; } | awk -v size="$_size" "$AWKLIB"'
    BEGIN { for (i = 32; i < 127; i++) PR[i] = sprintf("%c", i); PR[92] = "\\\\" }
    {
      for (i = 1; i <= NF; i++) {
        if ($i !~ /^[0-9][0-9]?[0-9]?$/ || $i + 0 > 255) { print "od failed, or printed something other than byte values" > errfile; bad = 1; exit 2 }
        v = $i + 0
        if (state == 0) { hi = v; state = 1; at = pos }
        else if (state == 1) {
          len = hi * 256 + v
          if (len == 0) { printf "empty entry (length 0) at byte %d\n", at > errfile; bad = 1; exit 1 }
          left = len; state = 2
          if (mode == "leaf") printf "\\000"
          else printf "%.0f %d ", first + cnt, len
          cnt++
        } else {
          if (mode == "leaf") printf "%s", OCT[v]
          else if (mode == "hex") printf "%02x", v
          else if (v in PR) printf "%s", PR[v]
          else printf "\\x%02x", v
          if (--left == 0) { printf "\n"; state = 0 }
        }
        pos++
      }
    }
    END {
      if (bad) exit 1
      if (pos != size + 0) { printf "od failed: it printed %d of the %d bytes\n", pos, size > errfile; exit 1 }
      if (state == 1) { printf "truncated: a length prefix is cut at byte %d\n", at > errfile; exit 1 }
      if (state == 2) { printf "\n"; printf "truncated: entry %.0f (from byte %d) is %d bytes short\n", first + cnt - 1, at, left > errfile; exit 1 }
      print cnt > countfile
    }' mode="$2" first="$3" countfile="$T/bcount" errfile="$T/berr"
}

# find_tile LOGDIR LEVEL N WIDTH: sets TFILE to the file of that tile (LEVEL "entries" for a
# bundle) and TREL to its path. A partial tile of width W holds the first W hashes (entries) of
# every wider one and of the full one (c2sp.org/tlog-tiles). A log may delete a partial once the
# full tile exists, and tlog-worm deletes superseded ones earlier (and serves them from a wider
# one): so when the partial file is missing, the narrowest wider partial is used, else the full
# one, and TFALLBACK is set to 1. TWIDTH is the width of the file found (TREL its path). TFILE
# is empty when none exists.
find_tile() {
  tile_rel "$2" "$3" "$4"
  TFALLBACK=0
  TWIDTH=$4
  TFILE=$1/$TREL
  [ -f "$TFILE" ] && return 0
  if [ "$4" -lt 256 ]; then
    tile_rel "$2" "$3" 256
    _best=256
    for _f in "$1/$TREL.p"/*; do
      _w=${_f##*/}
      case $_w in '' | *[!0-9]* | 0*) continue ;; esac
      [ -f "$_f" ] && [ "$_w" -gt "$4" ] && [ "$_w" -lt "$_best" ] && _best=$_w
    done
    tile_rel "$2" "$3" "$_best"
    if [ -f "$1/$TREL" ]; then TFILE=$1/$TREL; TFALLBACK=1; TWIDTH=$_best; return 0; fi
    tile_rel "$2" "$3" "$4"
  fi
  TFILE=
}

# script_dir: sets HERE to the directory of the running script.
case $0 in */*) HERE=${0%/*} ;; *) HERE=. ;; esac

# read_size_arg VALUE WHAT: dies unless VALUE is a canonical decimal.
check_decimal() {
  case $1 in '' | *[!0-9]* | 0?*) die "$2 must be a decimal number, not '$1'" ;; esac
}

# show_usage FROM TO: prints lines FROM..TO of the running script's header comment; exit 2.
show_usage() {
  awk -v a="$1" -v b="$2" 'NR >= a && NR <= b { sub(/^# ?/, ""); print }' "$0" >&2
  exit 2
}

# hex_to_file HEX FILE: writes the bytes HEX spells to FILE.
hex_to_file() {
  _esc=$(awk -v h="$1" "$AWKLIB"'BEGIN { printf "%s", hexesc(h) }') || die 'awk failed'
  printf "$_esc" >"$2"
  [ "$(wc -c <"$2")" -eq $((${#1} / 2)) ] || die "internal: could not write the bytes of $1"
}

# str_hex STRING: prints the bytes of STRING in hex.
str_hex() {
  printf '%s' "$1" | od -An -v -tx1 | awk '{ for (i = 1; i <= NF; i++) printf "%s", $i } END { printf "\n" }'
}
