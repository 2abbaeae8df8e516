# lib.sh: shared functions of the tlog forensic scripts. Sourced, never run.
#
# POSIX sh only (tested under dash). Tools: od, awk, printf, and one SHA-256 program
# (sha256sum, or openssl dgst -sha256, or shasum -a 256, or BSD sha256), plus mkdir/rm/wc.
# Hashes travel between the tools as lowercase hex, one per line.
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
  T=$_base/tlog-forensic.$$
  rm -rf "$T"
  mkdir -m 700 "$T" && mkdir "$T/h" || die "cannot create a work directory in $_base (set TMPDIR)"
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
    if (nb >= 8) { nb -= 8; out = out sprintf("%02x", int(bits / 2 ^ nb)); bits = bits % (2 ^ nb) }
  }
  if (pad > 2 || bits != 0) return ""
  return out
}
function hexb64(h,   i, n, v, out, bits, nb) {
  out = ""; bits = 0; nb = 0
  for (i = 1; i < length(h); i += 2) {
    bits = bits * 256 + (index(HEXD, substr(h, i, 1)) - 1) * 16 + index(HEXD, substr(h, i + 1, 1)) - 1; nb += 8
    while (nb >= 6) { nb -= 6; v = int(bits / 2 ^ nb); out = out substr(B64, v + 1, 1); bits = bits % (2 ^ nb) }
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

# tile_hex FILE OUT: the hashes of a tile file, one hex hash per line. Fails when the file is
# not a whole number of 32-byte hashes.
tile_hex() {
  od -An -v -tx1 "$1" 2>/dev/null | awk '
    { for (i = 1; i <= NF; i++) { s = s $i; if (++n % 32 == 0) { print s; s = "" } } }
    END { if (n % 32 != 0) exit 1 }' >"$2"
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
      if (s !~ /^(0|[1-9][0-9]*)$/) { print "bad=size line is not a canonical decimal"; exit }
      if (length(h) != 64) { print "bad=root line is not base64 of 32 bytes"; exit }
      printf "size=%s\nroot64=%s\nroot=%s\norigin=%s\n", s, r, h, o
    }' "$1" >"$T/cp.vars"
  CP_BAD=; CP_SIZE=; CP_ROOT=; CP_ROOT_B64=; CP_ORIGIN=
  while IFS= read -r _l; do
    case $_l in
      bad=*) CP_BAD=${_l#bad=} ;;
      size=*) CP_SIZE=${_l#size=} ;;
      root64=*) CP_ROOT_B64=${_l#root64=} ;;
      root=*) CP_ROOT=${_l#root=} ;;
      origin=*) CP_ORIGIN=${_l#origin=} ;;
    esac
  done <"$T/cp.vars"
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
# in $T/berr) when the bundle is truncated or holds an empty entry.
bundle_parse() {
  od -An -v -tu1 "$1" | awk "$AWKLIB"'
    BEGIN { for (i = 32; i < 127; i++) PR[i] = sprintf("%c", i); PR[92] = "\\\\" }
    {
      for (i = 1; i <= NF; i++) {
        v = $i + 0
        if (state == 0) { hi = v; state = 1; at = pos }
        else if (state == 1) {
          len = hi * 256 + v
          if (len == 0) { printf "empty entry (length 0) at byte %d\n", at > errfile; bad = 1; exit 1 }
          left = len; state = 2
          if (mode == "leaf") printf "\\000"
          else printf "%d %d ", first + cnt, len
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
      if (state == 1) { printf "truncated: a length prefix is cut at byte %d\n", at > errfile; exit 1 }
      if (state == 2) { printf "\n"; printf "truncated: entry %d (from byte %d) is %d bytes short\n", first + cnt - 1, at, left > errfile; exit 1 }
      print cnt > countfile
    }' mode="$2" first="$3" countfile="$T/bcount" errfile="$T/berr"
}

# find_tile LOGDIR LEVEL N WIDTH: sets TFILE to the file of that tile (LEVEL "entries" for a
# bundle) and TREL to its path. A log may delete a partial tile once the full one exists
# (c2sp.org/tlog-tiles), so when the partial file is missing the full one is used (its first
# WIDTH hashes or entries are the same) and TFALLBACK is set to 1. TFILE is empty when neither
# exists.
find_tile() {
  tile_rel "$2" "$3" "$4"
  TFALLBACK=0
  TFILE=$1/$TREL
  [ -f "$TFILE" ] && return 0
  if [ "$4" -lt 256 ]; then
    tile_rel "$2" "$3" 256
    if [ -f "$1/$TREL" ]; then TFILE=$1/$TREL; TFALLBACK=1; return 0; fi
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
  _esc=$(awk -v h="$1" "$AWKLIB"'BEGIN { printf "%s", hexesc(h) }')
  printf "$_esc" >"$2"
}

# str_hex STRING: prints the bytes of STRING in hex.
str_hex() {
  printf '%s' "$1" | od -An -v -tx1 | awk '{ for (i = 1; i <= NF; i++) printf "%s", $i } END { printf "\n" }'
}
