/**
 * Witness policies in the Sigsum / Tessera policy syntax, with C2SP vkeys:
 *
 *   log <vkey> [<url>]                    a key of the log itself (for verifiers)
 *   witness <name> <vkey> [<url>]         a witness key; the URL is its submission prefix
 *   group <name> <k|all|any> <member>...  k of the members (witnesses or groups)
 *   quorum <name|none>                    the group (or witness) that must be satisfied
 *
 * Blank lines and lines starting with "#" are ignored. Pure: no I/O.
 */
import { parseCanonicalDecimal } from '../decimal.js';
import { TlogError, ErrorCode } from '../errors.js';
import { parseVerifierKey } from './keys.js';
import { verifierFor, type TypedVerifier } from './signers.js';

export interface PolicyWitness {
  readonly name: string;
  readonly verifier: TypedVerifier;
  readonly vkey: string;
  readonly url?: string;
}

interface Group {
  readonly name: string;
  readonly threshold: number;
  readonly members: readonly string[];
}

export interface WitnessPolicy {
  readonly logKeys: readonly TypedVerifier[];
  readonly witnesses: ReadonlyMap<string, PolicyWitness>;
  readonly groups: ReadonlyMap<string, Group>;
  /** null: `quorum none`, no cosignature needed. */
  readonly quorum: string | null;
}

function bad(line: number, why: string): TlogError {
  return new TlogError(ErrorCode.badInput, `witness policy line ${line}: ${why}`);
}

function checkUrl(line: number, url: string | undefined): string | undefined {
  if (url === undefined) return undefined;
  try {
    const u = new URL(url);
    if (u.protocol !== 'http:' && u.protocol !== 'https:') throw new Error();
  } catch {
    throw bad(line, `${JSON.stringify(url)} is not an http(s) URL`);
  }
  return url.replace(/\/+$/, '');
}

export function parsePolicy(text: string): WitnessPolicy {
  const logKeys: TypedVerifier[] = [];
  const witnesses = new Map<string, PolicyWitness>();
  const groups = new Map<string, Group>();
  let quorum: string | null | undefined;
  const lines = text.split('\n');
  lines.forEach((raw, i) => {
    const n = i + 1;
    const line = raw.trim();
    if (line === '' || line.startsWith('#')) return;
    const [kw, ...args] = line.split(/\s+/);
    const key = (vkey: string) => {
      try {
        return verifierFor(parseVerifierKey(vkey));
      } catch (e) {
        throw bad(n, (e as Error).message);
      }
    };
    const defined = (name: string) => witnesses.has(name) || groups.has(name);
    switch (kw) {
      case 'log':
        if (args.length < 1 || args.length > 2) throw bad(n, 'want: log <vkey> [<url>]');
        logKeys.push(key(args[0]!));
        return;
      case 'witness': {
        if (args.length < 2 || args.length > 3) throw bad(n, 'want: witness <name> <vkey> [<url>]');
        const [name, vkey, url] = args as [string, string, string?];
        if (defined(name)) throw bad(n, `${name} is defined twice`);
        witnesses.set(name, { name, verifier: key(vkey), vkey, url: checkUrl(n, url) });
        return;
      }
      case 'group': {
        if (args.length < 3) throw bad(n, 'want: group <name> <k|all|any> <member>...');
        const [name, k, ...members] = args as [string, string, ...string[]];
        if (defined(name)) throw bad(n, `${name} is defined twice`);
        for (const m of members) if (!defined(m)) throw bad(n, `member ${m} is not defined above`);
        if (new Set(members).size !== members.length) throw bad(n, 'a member is listed twice');
        const threshold = k === 'all' ? members.length : k === 'any' ? 1 : (parseCanonicalDecimal(k) ?? NaN);
        if (!(threshold >= 1 && threshold <= members.length)) throw bad(n, `threshold ${k} is not 1..${members.length}, "all" or "any"`);
        groups.set(name, { name, threshold, members });
        return;
      }
      case 'quorum':
        if (args.length !== 1) throw bad(n, 'want: quorum <name|none>');
        if (quorum !== undefined) throw bad(n, 'quorum is set twice');
        if (args[0] !== 'none' && !defined(args[0]!)) throw bad(n, `quorum ${args[0]} is not defined`);
        quorum = args[0] === 'none' ? null : args[0]!;
        return;
      default:
        throw bad(n, `unknown keyword ${JSON.stringify(kw)}`);
    }
  });
  if (quorum === undefined) throw new TlogError(ErrorCode.badInput, 'witness policy has no quorum line');
  return { logKeys, witnesses, groups, quorum };
}

/** Whether the witnesses whose cosignatures verified satisfy the policy's quorum. */
export function policySatisfied(p: WitnessPolicy, cosigned: ReadonlySet<string>): boolean {
  if (p.quorum === null) return true;
  const memo = new Map<string, boolean>();
  const ok = (name: string): boolean => {
    const known = memo.get(name);
    if (known !== undefined) return known;
    let r: boolean;
    if (p.witnesses.has(name)) r = cosigned.has(name);
    else {
      const g = p.groups.get(name)!;
      r = g.members.filter(ok).length >= g.threshold;
    }
    memo.set(name, r);
    return r;
  };
  return ok(p.quorum);
}

/** Witnesses grouped by submission URL: one add-checkpoint request per URL (tessera#799). */
export function witnessesByUrl(p: WitnessPolicy): Map<string, PolicyWitness[]> {
  const out = new Map<string, PolicyWitness[]>();
  for (const w of p.witnesses.values()) {
    if (!w.url) continue;
    const list = out.get(w.url) ?? [];
    list.push(w);
    out.set(w.url, list);
  }
  return out;
}
