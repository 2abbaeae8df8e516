/**
 * The HTML of the service's pages (page.ts gathers what they show). Pure: views in, strings out.
 *
 * Every value that reaches the HTML goes through esc(): origins come from configuration and may
 * hold any character but spaces and "+" (c2sp.org/signed-note key names), witness names and
 * errors come from policies and the network. There is no script at all, and the
 * Content-Security-Policy allows none: only this file's one style sheet, by its hash. The
 * verifier keys sit in <code> elements that select whole on a click, to copy.
 */
import { createHash } from 'node:crypto';
import type { ReceiptEntry } from '../anchor/index.js';
import { parseVerifierKey, SignatureType } from '../note/keys.js';
import type { WitnessStatus } from '../witness-client/cosigner.js';

export interface TenantView {
  readonly name: string;
  readonly origin: string;
  readonly vkeys: readonly string[];
  /** The tlog-tiles URL prefix of the log as the caller reached it: http(s)://host/<tenant>. */
  readonly base: string;
  readonly treeSize: number;
  /** Base64, as on the checkpoint's third line. */
  readonly rootHash: string;
  /** The committed size: beyond treeSize while witnesses have not cosigned it (fail-closed). */
  readonly committedSize: number;
  /** POSIX seconds the published checkpoint was signed at; null when it carries no timestamp. */
  readonly signedAt: number | null;
  readonly witnesses: { readonly mode: string; readonly quorum: string | null; readonly list: readonly WitnessStatus[] } | null;
  readonly anchor: AnchorView | null;
  readonly private: boolean;
  /** POSIX seconds of the request: ages are counted to it. */
  readonly now: number;
}

export type AnchorView =
  | { readonly state: 'receipt'; readonly entry: ReceiptEntry; readonly rekor: { readonly apiVersion: string; readonly url: string } | null }
  | { readonly state: 'none-yet' }
  | { readonly state: 'unreadable' };

const ESCAPES: Record<string, string> = { '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' };

/** Text for HTML element content and double-quoted attribute values. */
export function esc(s: string | number): string {
  return String(s).replace(/[&<>"']/g, (ch) => ESCAPES[ch]!);
}

/** A word for the POSIX shell, whatever it holds (origins may hold quotes). */
export function shellWord(s: string): string {
  return /^[A-Za-z0-9_./:@%+=,-]+$/.test(s) ? s : `'${s.replace(/'/g, `'\\''`)}'`;
}

/** An http(s) URL to link to, or null for anything else (never a javascript: link). */
function httpUrl(s: string): string | null {
  try {
    const u = new URL(s);
    return u.protocol === 'http:' || u.protocol === 'https:' ? u.href : null;
  } catch {
    return null;
  }
}

const KEY_KINDS: Record<number, string> = {
  [SignatureType.ed25519]: 'Ed25519 (signed-note, type 0x01)',
  [SignatureType.cosignatureV1]: 'Ed25519 cosignature/v1 (type 0x04)',
  [SignatureType.mldsa44Subtree]: 'ML-DSA-44 (tlog-cosignature, type 0x06)',
};

/** What kind of key a vkey is, in words. */
function keyKind(vkey: string): string {
  try {
    return KEY_KINDS[parseVerifierKey(vkey).type] ?? 'unknown key type';
  } catch {
    return 'unreadable key';
  }
}

/** "42 s ago", "3 min ago", "5 h ago", "2 d ago": the age in its largest whole unit. */
export function ago(seconds: number): string {
  if (seconds < 0) return 'in the future (clock skew)';
  if (seconds < 120) return `${Math.floor(seconds)} s ago`;
  if (seconds < 7200) return `${Math.floor(seconds / 60)} min ago`;
  if (seconds < 172800) return `${Math.floor(seconds / 3600)} h ago`;
  return `${Math.floor(seconds / 86400)} d ago`;
}

/** A time as an age with the exact time beside it, e.g. "3 min ago (2026-01-02T03:04:05Z)". */
function when(seconds: number, now: number, cls: string): string {
  const iso = new Date(seconds * 1000).toISOString().replace('.000Z', 'Z');
  return `<span class="${esc(cls)}" data-seconds="${esc(now - seconds)}">${esc(ago(now - seconds))}</span> <time datetime="${esc(iso)}">(${esc(iso)})</time>`;
}

const STYLE = `
:root { color-scheme: light dark; --muted: #666; --line: #ccc8; }
body { font: 15px/1.5 system-ui, sans-serif; max-width: 62rem; margin: 2rem auto; padding: 0 1rem; }
h1 { font-size: 1.5rem; margin-bottom: 0; word-break: break-all; }
h2 { font-size: 1.1rem; margin-top: 2rem; border-bottom: 1px solid var(--line); }
code, pre { font: 13px/1.4 ui-monospace, monospace; }
code.copy, pre.copy { user-select: all; -webkit-user-select: all; cursor: copy; word-break: break-all; }
pre { background: #8881; padding: .6rem .8rem; white-space: pre-wrap; word-break: break-all; }
table { border-collapse: collapse; width: 100%; }
th, td { text-align: left; vertical-align: top; padding: .25rem .6rem .25rem 0; border-bottom: 1px solid var(--line); }
.muted, time { color: var(--muted); }
.bad { color: #c33; }
ul.keys { list-style: none; padding: 0; }
ul.keys li { margin: .5rem 0; }
ul.keys span { display: block; font-size: .85rem; }
code.vkey { display: block; max-height: 4.2em; overflow-y: auto; }
`;

/** Response headers of every page: no script runs, only the style sheet above (by its hash). */
export const PAGE_HEADERS: Readonly<Record<string, string>> = {
  'Content-Type': 'text/html; charset=utf-8',
  'Content-Security-Policy': `default-src 'none'; style-src 'sha256-${createHash('sha256').update(STYLE).digest('base64')}'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'`,
  'X-Content-Type-Options': 'nosniff',
  'Referrer-Policy': 'no-referrer',
  'Cache-Control': 'no-store',
};

function page(title: string, body: string): string {
  return `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>${esc(title)}</title>
<style>${STYLE}</style>
</head>
<body>
${body}
<p class="muted">tlog-worm: a write-once transparency log (<a href="https://c2sp.org/tlog-tiles">C2SP tlog-tiles</a>).</p>
</body>
</html>
`;
}

export function renderIndex(tenants: readonly { name: string; origin: string; treeSize: number }[]): string {
  const rows = tenants.map(
    (t) =>
      `<tr class="tenant"><td><a href="/${esc(t.name)}/">${esc(t.name)}</a></td><td><code>${esc(t.origin)}</code></td><td class="size">${esc(t.treeSize)}</td></tr>`,
  );
  const body = rows.length
    ? `<table><thead><tr><th>log</th><th>origin</th><th>entries</th></tr></thead><tbody>\n${rows.join('\n')}\n</tbody></table>`
    : '<p>No public logs here.</p>';
  return page('Transparency logs', `<h1>Transparency logs</h1>\n${body}`);
}

function witnessesSection(v: TenantView): string {
  if (!v.witnesses) return '<h2>Witnesses</h2>\n<p class="muted">None configured: checkpoints are published as the log signs them.</p>';
  const w = v.witnesses;
  const rows = w.list.map((s) => {
    const last = !s.last
      ? '<span class="never">never cosigned</span>'
      : `size ${esc(s.last.treeSize)}, ${s.last.time === null ? 'time not known' : when(s.last.time, v.now, 'age')}`;
    const err = s.lastError ? `<br><span class="bad error">last attempt failed: ${esc(s.lastError.slice(0, 300))}</span>` : '';
    return `<tr class="witness" data-witness="${esc(s.name)}"><td>${esc(s.name)}</td><td><code class="copy">${esc(s.vkey)}</code>${s.url ? `<br><span class="muted">${esc(s.url)}</span>` : ''}</td><td class="last">${last}${err}</td></tr>`;
  });
  return `<h2>Witnesses</h2>
<p>Quorum: <code>${esc(w.quorum ?? 'none')}</code> (${esc(w.mode)}: ${w.mode === 'fail-closed' ? 'a checkpoint is published only once the quorum cosigned it' : 'checkpoints are published with whatever cosignatures came back'}).</p>
<table><thead><tr><th>witness</th><th>key</th><th>last cosignature</th></tr></thead><tbody>
${rows.join('\n')}
</tbody></table>`;
}

function anchorSection(v: TenantView): string {
  const a = v.anchor;
  if (!a) return '';
  if (a.state === 'none-yet') return '<h2>Rekor anchor</h2>\n<p id="anchor">No checkpoint anchored yet.</p>';
  if (a.state === 'unreadable') return '<h2>Rekor anchor</h2>\n<p id="anchor" class="bad">The receipts could not be read (see the service log).</p>';
  const e = a.entry;
  const receipt = `/${esc(v.name)}/${esc(e.receipt)}`;
  // Rekor v1 serves an entry by its index; Rekor v2 (tiles) has no such lookup: the receipt
  // holds the entry, its inclusion proof and Rekor's checkpoint.
  const v1 =
    a.rekor && a.rekor.apiVersion === 'v1' && e.rekorLogIndex !== null
      ? httpUrl(`${a.rekor.url.replace(/\/+$/, '')}/api/v1/log/entries?logIndex=${e.rekorLogIndex}`)
      : null;
  const entry =
    e.rekorLogIndex === null
      ? 'entry unknown'
      : v1
        ? `<a id="rekor-entry" href="${esc(v1)}">entry ${esc(e.rekorLogIndex)}</a>`
        : `entry <span id="rekor-entry">${esc(e.rekorLogIndex)}</span>`;
  const where = a.rekor ? ` of <code>${esc(a.rekor.url)}</code> (Rekor ${esc(a.rekor.apiVersion)})` : '';
  const time =
    e.verified && e.attestedAt
      ? `anchored ${when(Math.floor(Date.parse(e.attestedAt) / 1000), v.now, 'age')}, attested by ${esc(e.attestedBy ?? 'unknown')}`
      : `<span class="bad">not verified by this service: ${esc(e.refused ?? 'unknown reason')}</span>`;
  return `<h2>Rekor anchor</h2>
<p id="anchor">Size <span id="anchor-size">${esc(e.treeSize)}</span>: ${entry}${where}; ${time}.
<br><a href="${receipt}">receipt</a> (a Sigstore bundle; <code>tlog anchor verify</code> checks it offline) · <a href="/${esc(v.name)}/anchors">all receipts</a></p>`;
}

function routesSection(v: TenantView): string {
  const p = `/${esc(v.name)}`;
  const rows: [string, string][] = [
    [`GET <a href="${p}/checkpoint">${p}/checkpoint</a>`, 'the latest checkpoint (a signed note)'],
    [`GET ${p}/tile/&lt;L&gt;/&lt;N&gt;[.p/&lt;W&gt;]`, 'hash tiles (tlog-tiles)'],
    [`GET ${p}/tile/entries/&lt;N&gt;[.p/&lt;W&gt;]`, 'entry bundles (tlog-tiles)'],
    [`GET <a href="${p}/vkeys">${p}/vkeys</a>`, 'the verifier keys, one per line (text/plain)'],
    [`GET <a href="${p}/read_since?index=0&amp;limit=16">${p}/read_since?index=N&amp;limit=M</a>`, 'entries from N, with the next cursor'],
    [`GET ${p}/proof/inclusion?index=&amp;tree_size=`, 'inclusion proof by index'],
    [`GET ${p}/proof/by-hash/&lt;hex leaf hash&gt;`, 'index and inclusion proof by leaf hash'],
    [`GET ${p}/proof/consistency?old=&amp;new=`, 'consistency proof'],
    [`POST ${p}/append`, 'append one entry (credentials)'],
    [`POST ${p}/append-batch`, 'append many entries (credentials)'],
  ];
  if (v.witnesses) rows.push([`POST ${p}/cosignature`, 'cosignatures pushed by a configured witness']);
  if (v.anchor) rows.push([`GET <a href="${p}/anchors">${p}/anchors</a>`, 'the Rekor receipts']);
  return `<h2>API</h2>
<table><tbody>
${rows.map(([r, what]) => `<tr><td><code>${r}</code></td><td>${what}</td></tr>`).join('\n')}
</tbody></table>`;
}

export function renderTenantPage(v: TenantView): string {
  const keys = v.vkeys.map((k) => `<li><span class="muted">${esc(keyKind(k))}</span><code class="copy vkey">${esc(k)}</code></li>`).join('\n');
  const waiting =
    v.committedSize > v.treeSize ? `<p class="muted">Committed: ${esc(v.committedSize)} entries, published once the witness quorum cosigns.</p>` : '';
  // One key is enough to verify with (its signature must be there and verify); the Ed25519 one
  // keeps the line short. Keys come from this page: compare them with what the operator published.
  // A private log's reads need its read token: from the environment, never on the command line.
  const verify = `${v.private ? 'TLOG_READ_TOKEN=<read token> ' : ''}tlog verify --url ${shellWord(v.base)} --vkey ${shellWord(v.vkeys[0] ?? '')}`;
  const body = `<h1 id="origin">${esc(v.origin)}</h1>
<p class="muted">log <code>${esc(v.name)}</code>${v.private ? ' (private: reads need a read token)' : ''}</p>

<h2>Verifier keys</h2>
<ul class="keys">
${keys}
</ul>
<p class="muted">Click a key to select it. As text, one per line: <a href="/${esc(v.name)}/vkeys">/${esc(v.name)}/vkeys</a>.</p>

<h2>Checkpoint</h2>
<table><tbody>
<tr><th>entries (tree size)</th><td id="tree-size">${esc(v.treeSize)}</td></tr>
<tr><th>root hash</th><td><code id="root-hash">${esc(v.rootHash)}</code></td></tr>
<tr><th>signed</th><td id="checkpoint-age">${v.signedAt === null ? 'time not known' : when(v.signedAt, v.now, 'age')}</td></tr>
</tbody></table>
${waiting}
${witnessesSection(v)}
${anchorSection(v)}
${routesSection(v)}

<h2>Verify it</h2>
<p>Audit the whole log from its tiles (every hash, every signature, every checkpoint's consistency):</p>
<pre class="copy" id="verify-command">${esc(verify)}</pre>
<p class="muted"><code>npx tlog</code> from the <code>tlog-worm</code> package. Give the ML-DSA-44 key as another <code>--vkey</code> to check the post-quantum signature too, and <code>--witness-policy FILE</code> to require the witnesses' quorum.</p>`;
  return page(v.origin, body);
}
