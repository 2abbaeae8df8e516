#!/bin/sh
# tlog-checkpoint.sh: decode and explain a checkpoint and its signatures, and verify them.
#
# usage: tlog-checkpoint.sh [-k VKEYS]... [-d DIR] CHECKPOINT
#
#   CHECKPOINT  a signed checkpoint: tiles/<tenant>/checkpoint or checkpoints/<tenant>/log/<N>
#   -k VKEYS    a file of verifier keys, one "name+hexid+base64(type||key)" per line, or one
#               such key itself; may repeat. Default: checkpoints/<tenant>/vkeys found next to
#               tiles/<tenant>/checkpoint or checkpoints/<tenant>/log/<N>
#   -d DIR      write each signature's signed message, signature and public key (DER) there,
#               as sig<i>.msg, sig<i>.sig and sig<i>.pub.der, for checking with other tools
#
# Ed25519 signatures (types 0x01 and 0x04) are verified with openssl >= 3.0 (pkeyutl -rawin).
# ML-DSA-44 (type 0x06) needs a FIPS 204 implementation: OpenSSL >= 3.5 is used when present.
# Exit 0 when at least one signature from a known key verifies and none fails, 1 when the
# note is malformed, a key ID is wrong or a signature fails, 3 when nothing could be verified
# (no known key, or no tool to verify with), 2 on a usage error.

case $0 in */*) . "${0%/*}/lib.sh" ;; *) . ./lib.sh ;; esac

usage() { show_usage 3 20; }
OUT=
pick_sha256
make_tmp
: >"$T/vkeys"
NKEYSRC=0
while [ $# -gt 0 ]; do
  case $1 in
    -k)
      [ $# -ge 2 ] || usage
      if [ -f "$2" ]; then cat "$2" >>"$T/vkeys"; else printf '%s\n' "$2" >>"$T/vkeys"; fi
      NKEYSRC=$((NKEYSRC + 1)); shift 2 ;;
    -d) [ $# -ge 2 ] || usage; OUT=$2; mkdir -p "$OUT" || die "cannot create $OUT"; shift 2 ;;
    -*) usage ;;
    *) break ;;
  esac
done
[ $# -eq 1 ] || usage
CP=$1
[ -r "$CP" ] || die "cannot read $CP"
if [ "$NKEYSRC" -eq 0 ]; then
  # tiles/<tenant>/checkpoint -> checkpoints/<tenant>/vkeys; checkpoints/<tenant>/log/... -> ../vkeys
  case $CP in */*) d=${CP%/*} ;; *) d=. ;; esac
  for cand in "$d/../../checkpoints/${d##*/}/vkeys" "${CP%%/log/*}/vkeys"; do
    if [ -f "$cand" ]; then cat "$cand" >>"$T/vkeys"; say "verifier keys from $cand"; break; fi
  done
fi

FAILS=0
VERIFIED=0
UNCHECKED=0
fail() { say "  FAIL: $*"; FAILS=$((FAILS + 1)); }

# --- 1. The note: text, one blank line, signature lines ---------------------------------
total=$(wc -c <"$CP")
lastbyte=$(od -An -tu1 -j $((total - 1)) -N 1 "$CP" | awk '{ print $1 }')
[ "$lastbyte" = 10 ] || { say "FAIL: the note does not end in a newline"; exit 1; }
awk -v textfile="$T/msg" -v sigfile="$T/sigs" '
  { line[NR] = $0; if ($0 == "") blank = NR }
  END {
    if (!blank) { print "no blank line: this is not a signed note"; exit 1 }
    if (blank == NR) { print "no signature lines after the blank line"; exit 1 }
    for (i = 1; i < blank; i++) print line[i] > textfile
    for (i = blank + 1; i <= NR; i++) {
      l = line[i]
      if (substr(l, 1, 4) != "\342\200\224 ") { printf "line %d does not start with \"\342\200\224 \" (U+2014 and a space): %s\n", i, substr(l, 1, 40); exit 1 }
      n = split(substr(l, 5), f, " ")
      if (n != 2) { printf "line %d is not \"\342\200\224 <name> <base64>\"\n", i; exit 1 }
      print f[1], f[2] > sigfile
    }
  }' "$CP" >"$T/err" || { say "FAIL: malformed note: $(cat "$T/err")"; exit 1; }
textlen=$(wc -c <"$T/msg")
nsig=$(wc -l <"$T/sigs")

say "checkpoint $CP: $total bytes, a C2SP signed note (c2sp.org/signed-note)"
say ""
say "signed text ($textlen bytes: every line up to the blank line, each ending in a newline;"
say "this is what the signatures cover, byte for byte):"
awk "$AWKLIB"'
  NR == 1 { printf "  line 1  origin     %s\n", $0 }
  NR == 2 { printf "  line 2  tree size  %s entries (indexes 0 to %s)\n", $0, ($0 == "0" ? "none" : $0 - 1) }
  NR == 3 { h = b64hex($0); printf "  line 3  root hash  %s\n                     = hex %s%s\n", $0, h, (length(h) == 64 ? "" : "  <- NOT base64 of 32 bytes") }
  NR > 3  { printf "  line %d  extension  %s (opaque; not covered by ML-DSA-44 cosignatures)\n", NR, $0 }
  END { if (NR < 3) print "  FAIL: a checkpoint needs origin, size and root lines" }' "$T/msg"
read_checkpoint "$T/msg"

# --- 2. The verifier keys: name+hexid+base64(type || public key) --------------------------
# The key ID must be the first 4 bytes of SHA-256(name || 0x0A || type || public key).
awk "$AWKLIB"'
  BEGIN { for (i = 1; i < 256; i++) ORD[sprintf("%c", i)] = i }
  /^[ \t]*$/ { next }
  {
    l = $0; sub(/^[ \t]+/, "", l); sub(/[ \t\r]+$/, "", l)
    p = index(l, "+"); name = substr(l, 1, p - 1); rest = substr(l, p + 1)
    q = index(rest, "+"); id = substr(rest, 1, q - 1); blob = b64hex(substr(rest, q + 1))
    if (p < 2 || q != 9 || id ~ /[^0-9a-f]/ || length(blob) < 4) { printf "bad %s\n", l > badfile; next }
    nh = ""; for (i = 1; i <= length(name); i++) nh = nh sprintf("%02x", ORD[substr(name, i, 1)])
    print name, id, substr(blob, 1, 2), substr(blob, 3) > keyfile
    print hexesc(nh "0a" blob)
  }' keyfile="$T/keys" badfile="$T/badkeys" "$T/vkeys" >"$T/keyid.in" || die 'awk failed'
[ -f "$T/keys" ] || : >"$T/keys"
if [ -s "$T/badkeys" ]; then
  while read -r _ k; do say "warning: not a verifier key, ignored: $k"; done <"$T/badkeys"
fi
hash_file "$T/keyid.in" "$T/keyid.out"
awk 'NR == FNR { h[FNR] = substr($0, 1, 8); next } { print $0, h[FNR] }' "$T/keyid.out" "$T/keys" >"$T/keys2" || die 'awk failed'
say ""
if [ -s "$T/keys2" ]; then
  say "verifier keys (name+keyID+base64(type || public key)):"
  while read -r kname kid ktype kpub kcalc; do
    case $ktype in 01) kt='0x01 Ed25519' ;; 04) kt='0x04 Ed25519 cosignature/v1' ;; 06) kt='0x06 ML-DSA-44 subtree cosignature' ;; *) kt="0x$ktype (unknown to this script)" ;; esac
    # Both IDs must be 8 hex digits before they are compared (an empty one is never a match).
    case $kid$kcalc in *[!0-9a-f]*) kcalc=malformed ;; esac
    [ ${#kid} -eq 8 ] && [ ${#kcalc} -eq 8 ] || kcalc=malformed
    if [ "$kcalc" = malformed ]; then ok="key ID NOT CHECKED: it or its SHA-256 is malformed"; FAILS=$((FAILS + 1))
    elif [ "$kid" = "$kcalc" ]; then ok="key ID ok: SHA-256(name || 0x0A || type || key) starts with $kcalc"
    else ok="key ID WRONG: SHA-256(name || 0x0A || type || key) starts with $kcalc"; FAILS=$((FAILS + 1)); fi
    say "  $kname $kid  type $kt, $(( ${#kpub} / 2 ))-byte public key; $ok"
  done <"$T/keys2"
else
  say "no verifier keys given (-k): signatures are decoded but cannot be verified"
fi

# --- 3. The signature lines ------------------------------------------------------------------
ED_DER=302a300506032b6570032100
# SubjectPublicKeyInfo prefixes: Ed25519 (RFC 8410) and ML-DSA-44 (OID 2.16.840.1.101.3.4.3.17).
MLDSA44_DER=30820532300b06096086480165030403110382052100
have_ed=0
if has openssl; then
  case $(openssl version 2>/dev/null) in "OpenSSL "[3-9]* | "OpenSSL "[1-9][0-9]*) have_ed=1 ;; esac
fi
have_mldsa=0
[ "$have_ed" = 1 ] && openssl list -public-key-algorithms 2>/dev/null | awk 'tolower($0) ~ /ml-dsa-44/ { f = 1 } END { exit !f }' && have_mldsa=1

# openssl_verify PUBDER MSG SIG: 0 verified, 1 bad signature, 2 openssl could not check.
openssl_verify() {
  _o=$(openssl pkeyutl -verify -pubin -keyform DER -inkey "$1" -rawin -in "$2" -sigfile "$3" 2>&1)
  case $_o in
    *"Verified Successfully"*) return 0 ;;
    *"Verification Failure"*) return 1 ;;
    *) OPENSSL_SAID=$(printf '%s' "$_o" | awk 'NR == 1'); return 2 ;;
  esac
}

say ""
say "signature lines ($nsig): \"— <key name> <base64(key ID (4 bytes) || signature)>\""
i=0
while read -r sname sb64; do
  i=$((i + 1))
  shex=$(awk -v s="$sb64" "$AWKLIB"'BEGIN { print b64hex(s) }')
  say ""
  say "signature $i: key name $sname"
  if [ ${#shex} -lt 10 ]; then fail "not base64 of a key ID and a signature"; continue; fi
  sid=$(printf '%s' "$shex" | awk '{ print substr($0, 1, 8) }')
  body=$(printf '%s' "$shex" | awk '{ print substr($0, 9) }')
  blen=$(( ${#body} / 2 ))
  say "  key ID     $sid (the first 4 bytes)"
  case $blen in
    64) guess=01; gdesc='64 bytes: an Ed25519 signature over the text (type 0x01)' ;;
    72) guess=04; gdesc='72 bytes: an 8-byte timestamp then a 64-byte Ed25519 signature (cosignature/v1, type 0x04; an ECDSA (0x02) signature can also be this long)' ;;
    2428) guess=06; gdesc='2428 bytes: an 8-byte timestamp then a 2420-byte ML-DSA-44 signature (subtree cosignature, type 0x06)' ;;
    *) guess=; gdesc="$blen bytes: not a length this script knows (ECDSA 0x02 signatures vary in length)" ;;
  esac
  say "  payload    $gdesc"
  # Match by name AND key ID (c2sp.org/signed-note: anything else is ignored). Compared as
  # strings: awk compares two number-looking fields as numbers, so ID 504e3370 is "inf" (never
  # equal to itself in busybox awk) and 01e00000 would equal 00000001.
  key=$(awk -v n="$sname" -v id="$sid" '$1 "" == n "" && $2 "" == id "" { print $3, $4; exit }' "$T/keys2")
  ktype=${key%% *}
  kpub=${key#* }
  if [ -z "$key" ]; then
    say "  key        no verifier key has this name and key ID: ignored (verifiers MUST ignore unknown signatures)"
    ktype=$guess
  else
    say "  key        matches verifier key $sname+$sid (type 0x$ktype)"
    [ -z "$guess" ] || [ "$guess" = "$ktype" ] || fail "the payload length does not fit a type 0x$ktype signature"
  fi
  ts=
  case $ktype in
    04 | 06)
      tshex=$(printf '%s' "$body" | awk '{ print substr($0, 1, 16) }')
      ts=$(awk -v h="$tshex" "$AWKLIB"'BEGIN { printf "%.0f", hexnum(h) }')
      need_decimal "$ts" "the timestamp"
      if [ "$ts" = 0 ]; then say "  timestamp  0 (no claim about time)"
      else say "  timestamp  $ts = $(awk -v t="$ts" "$AWKLIB"'BEGIN { print utc(t) }') (u64 big-endian POSIX seconds: when the signer saw this tree)"; fi
      raw=$(printf '%s' "$body" | awk '{ print substr($0, 17) }') ;;
    *) raw=$body ;;
  esac
  # The signed message of each type.
  case $ktype in
    01) cp "$T/msg" "$T/m.$i"; mdesc='the signed text itself' ;;
    04) { printf 'cosignature/v1\ntime %s\n' "$ts"; cat "$T/msg"; } >"$T/m.$i"; mdesc="\"cosignature/v1\\ntime $ts\\n\" followed by the text" ;;
    06)
      nh=$(str_hex "$sname"); oh=$(str_hex "$CP_ORIGIN")
      mhex=737562747265652f76310a00$(printf '%02x' $(( ${#nh} / 2 )))$nh$tshex$(printf '%02x' $(( ${#oh} / 2 )))$oh$(printf '%016x%016x' 0 "$CP_SIZE")$CP_ROOT
      hex_to_file "$mhex" "$T/m.$i"
      mdesc="subtree/v1: \"subtree/v1\\n\\0\", u8-length key name, u64 timestamp, u8-length origin, u64 start 0, u64 end $CP_SIZE, the 32-byte root" ;;
    *) mdesc= ;;
  esac
  [ -n "$mdesc" ] && say "  signs      $mdesc ($(wc -c <"$T/m.$i") bytes)"
  [ -n "$ktype" ] && hex_to_file "$raw" "$T/s.$i"
  if [ -n "$key" ]; then
    case $ktype in 01 | 04) hex_to_file "$ED_DER$kpub" "$T/k.$i" ;; 06) hex_to_file "$MLDSA44_DER$kpub" "$T/k.$i" ;; esac
  fi
  if [ -n "$OUT" ] && [ -n "$mdesc" ]; then
    cp "$T/m.$i" "$OUT/sig$i.msg"; cp "$T/s.$i" "$OUT/sig$i.sig"
    [ -f "$T/k.$i" ] && cp "$T/k.$i" "$OUT/sig$i.pub.der"
    say "  saved      $OUT/sig$i.msg, sig$i.sig$( [ -f "$T/k.$i" ] && printf ', sig%d.pub.der' "$i")"
  fi
  [ -n "$key" ] || continue
  case $ktype in
    01 | 04)
      if [ "$have_ed" = 0 ]; then
        say "  verify     NOT VERIFIED: Ed25519 verification needs openssl >= 3.0 (openssl pkeyutl -verify -rawin), not found"
        UNCHECKED=$((UNCHECKED + 1))
      elif openssl_verify "$T/k.$i" "$T/m.$i" "$T/s.$i"; then
        say "  verify     ok: openssl pkeyutl -verify -rawin: Ed25519 signature verified"
        VERIFIED=$((VERIFIED + 1))
      elif [ $? -eq 1 ]; then
        fail "the Ed25519 signature does NOT verify (openssl pkeyutl -verify -rawin)"
      else
        say "  verify     NOT VERIFIED: openssl could not check it: $OPENSSL_SAID"
        UNCHECKED=$((UNCHECKED + 1))
      fi ;;
    06)
      if [ "$have_mldsa" = 0 ]; then
        say "  verify     NOT VERIFIED: ML-DSA-44 needs a FIPS 204 implementation (OpenSSL >= 3.5: openssl pkeyutl -verify -rawin with the key in DER); this openssl has none${OUT:+; the message, signature and key are saved in $OUT}"
        UNCHECKED=$((UNCHECKED + 1))
      elif openssl_verify "$T/k.$i" "$T/m.$i" "$T/s.$i"; then
        say "  verify     ok: openssl pkeyutl -verify -rawin: ML-DSA-44 signature verified"
        VERIFIED=$((VERIFIED + 1))
      elif [ $? -eq 1 ]; then
        fail "the ML-DSA-44 signature does NOT verify (openssl pkeyutl -verify -rawin)"
      else
        say "  verify     NOT VERIFIED: openssl could not check it: $OPENSSL_SAID"
        UNCHECKED=$((UNCHECKED + 1))
      fi ;;
    *) say "  verify     NOT VERIFIED: this script cannot verify type 0x$ktype"; UNCHECKED=$((UNCHECKED + 1)) ;;
  esac
done <"$T/sigs"

say ""
if [ "$FAILS" -gt 0 ]; then
  say "FAIL: $FAILS problem(s): do not trust this checkpoint"
  printf '%s: FAIL: %s: %d problem(s) (see above)\n' "$PROG" "$CP" "$FAILS" >&2
  exit 1
fi
if [ "$VERIFIED" -eq 0 ]; then
  say "NOT VERIFIED: no signature from a known key could be checked ($UNCHECKED could not be checked with the tools here)"
  exit 3
fi
say "ok: $VERIFIED signature(s) verified$( [ "$UNCHECKED" -gt 0 ] && printf ', %d could not be checked here' "$UNCHECKED")"
exit 0
