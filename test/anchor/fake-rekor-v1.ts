/**
 * A Rekor v1 of our own on loopback, behaving like rekor.sigstore.dev for hashedrekord entries:
 *
 * - POST /api/v1/log/entries: checks the proposed hashedrekord 0.0.1 (sha256 digest, ECDSA
 *   signature over the digest by the embedded PEM public key: 400 otherwise), canonicalizes the
 *   body (sorted keys, like Rekor's JSON canonicalization), appends its RFC 6962 leaf to a real
 *   Merkle tree, and answers 201 with { <uuid>: { body, integratedTime, logID, logIndex,
 *   verification: { signedEntryTimestamp, inclusionProof { logIndex, rootHash, treeSize, hashes,
 *   checkpoint } } } }. The SET is ECDSA P-256 over the canonical JSON of body, integratedTime,
 *   logID and logIndex; the checkpoint a signed note "<host> - <treeID>" signed as "<host>" with
 *   key hint = the first 4 bytes of the log ID (SHA-256 of the log key's SPKI).
 * - A second POST of an entry with the same leaf: 409 with Location /api/v1/log/entries/<uuid>.
 * - GET /api/v1/log/entries/<uuid>: the entry with a fresh inclusion proof and checkpoint.
 * - GET /api/v1/log/publicKey: the log key (PEM).
 *
 * Faults for tests: queue them with `fail(...)`; each request (POST or GET) takes the next one.
 * `down()` / `up()` stop and restart listening on the same port; `onCommit` runs after an entry
 * is in the tree and before the answer (a test can kill the client there).
 */
import { createHash, generateKeyPairSync, sign as cryptoSign, type KeyObject } from 'node:crypto';
import http from 'node:http';
import type { AddressInfo, Socket } from 'node:net';
import { p256 } from '@noble/curves/nist.js';
import { leafHash, nodeHash } from '../../src/merkle/hash.js';
import { inclusionProof, treeHash, type NodeReader } from '../../src/merkle/proof.js';

export type Fault =
  | { readonly kind: 'status'; readonly status: number; readonly retryAfter?: string }
  | { readonly kind: 'slow'; readonly ms: number }
  | { readonly kind: 'reset' };

export interface StoredEntry {
  readonly uuid: string;
  readonly body: Buffer;
  readonly logIndex: number;
  readonly integratedTime: number;
  readonly set: string;
  /** Hex sha256 from the entry's data.hash. */
  readonly digest: string;
}

/** RFC 8785-style canonical JSON for the plain objects Rekor canonicalizes (strings, integers, objects). */
export function canonicalJSON(v: unknown): string {
  if (v === null || typeof v !== 'object') return JSON.stringify(v);
  if (Array.isArray(v)) return `[${v.map(canonicalJSON).join(',')}]`;
  const o = v as Record<string, unknown>;
  return `{${Object.keys(o)
    .sort()
    .filter((k) => o[k] !== undefined)
    .map((k) => `${JSON.stringify(k)}:${canonicalJSON(o[k])}`)
    .join(',')}}`;
}

const TREE_ID = '1193050959916656506';

export class FakeRekorV1 {
  readonly logKey: KeyObject;
  readonly publicKeyPem: string;
  readonly logID: Buffer;
  readonly entries: StoredEntry[] = [];
  private readonly byLeaf = new Map<string, StoredEntry>();
  private readonly leaves: Uint8Array[] = [];
  private readonly memo = new Map<string, Uint8Array>();
  private readonly faults: Fault[] = [];
  private server: http.Server | null = null;
  private readonly sockets = new Set<Socket>();
  private port = 0;
  /** Every request seen: method and path. */
  readonly requests: { method: string; path: string; status: number }[] = [];
  onCommit: ((e: StoredEntry) => Promise<void>) | null = null;
  /** Seconds since the epoch for integratedTime. */
  clock: () => number = () => Math.floor(Date.now() / 1000);

  constructor() {
    const { privateKey, publicKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' });
    this.logKey = privateKey;
    this.publicKeyPem = publicKey.export({ type: 'spki', format: 'pem' }) as string;
    this.logID = createHash('sha256')
      .update(publicKey.export({ type: 'spki', format: 'der' }))
      .digest();
  }

  get url(): string {
    return `http://127.0.0.1:${this.port}`;
  }

  fail(...f: Fault[]): void {
    this.faults.push(...f);
  }

  pendingFaults(): number {
    return this.faults.length;
  }

  entriesWithDigest(hex: string): StoredEntry[] {
    return this.entries.filter((e) => e.digest === hex);
  }

  async up(): Promise<void> {
    const server = http.createServer((req, res) => {
      this.handle(req, res).catch((e) => {
        res.statusCode = 500;
        res.end(JSON.stringify({ code: 500, message: String(e) }));
      });
    });
    server.on('connection', (s) => {
      this.sockets.add(s);
      s.on('close', () => this.sockets.delete(s));
    });
    await new Promise<void>((resolve) => server.listen(this.port, '127.0.0.1', resolve));
    this.port = (server.address() as AddressInfo).port;
    this.server = server;
  }

  /** Stops listening and drops every open connection: clients see ECONNREFUSED / resets. */
  async down(): Promise<void> {
    const s = this.server;
    this.server = null;
    if (!s) return;
    for (const sock of this.sockets) sock.destroy();
    await new Promise<void>((resolve) => s.close(() => resolve()));
  }

  private node: NodeReader = (height, index) => {
    const key = `${height}/${index}`;
    const known = this.memo.get(key);
    if (known) return known;
    const h = height === 0 ? this.leaves[index]! : nodeHash(this.node(height - 1, 2 * index), this.node(height - 1, 2 * index + 1));
    this.memo.set(key, h);
    return h;
  };

  /** The signed checkpoint of the current tree, Rekor v1 style. */
  checkpoint(): string {
    const host = '127.0.0.1';
    const size = this.leaves.length;
    const root = treeHash(size, this.node);
    const text = `${host} - ${TREE_ID}\n${size}\n${Buffer.from(root).toString('base64')}\n`;
    const sig = cryptoSign('sha256', Buffer.from(text), this.logKey);
    return `${text}\n\u2014 ${host} ${Buffer.concat([this.logID.subarray(0, 4), sig]).toString('base64')}\n`;
  }

  private view(e: StoredEntry): Record<string, unknown> {
    const size = this.leaves.length;
    const hashes = inclusionProof(e.logIndex, size, this.node).map((h) => Buffer.from(h).toString('hex'));
    return {
      [TREE_ID_HEX + e.uuid]: {
        body: e.body.toString('base64'),
        integratedTime: e.integratedTime,
        logID: this.logID.toString('hex'),
        logIndex: e.logIndex,
        verification: {
          inclusionProof: {
            checkpoint: this.checkpoint(),
            hashes,
            logIndex: e.logIndex,
            rootHash: Buffer.from(treeHash(size, this.node)).toString('hex'),
            treeSize: size,
          },
          signedEntryTimestamp: e.set,
        },
      },
    };
  }

  private async handle(req: http.IncomingMessage, res: http.ServerResponse): Promise<void> {
    const chunks: Buffer[] = [];
    for await (const c of req) chunks.push(c as Buffer);
    const body = Buffer.concat(chunks);
    const path = (req.url ?? '').split('?')[0]!;
    const send = (status: number, obj: unknown, headers: Record<string, string> = {}) => {
      this.requests.push({ method: req.method ?? '', path, status });
      res.writeHead(status, { 'Content-Type': 'application/json', ...headers });
      res.end(JSON.stringify(obj));
    };
    const fault = this.faults.shift();
    if (fault?.kind === 'reset') {
      this.requests.push({ method: req.method ?? '', path, status: 0 });
      req.socket.destroy();
      return;
    }
    if (fault?.kind === 'status') {
      return send(fault.status, { code: fault.status, message: 'injected' }, fault.retryAfter ? { 'Retry-After': fault.retryAfter } : {});
    }
    const slow = fault?.kind === 'slow' ? fault.ms : 0;

    if (req.method === 'GET' && path === '/api/v1/log/publicKey') {
      this.requests.push({ method: 'GET', path, status: 200 });
      res.writeHead(200, { 'Content-Type': 'application/x-pem-file' });
      res.end(this.publicKeyPem);
      return;
    }
    const m = /^\/api\/v1\/log\/entries\/([0-9a-f]{64}|[0-9a-f]{80})$/.exec(path);
    if (req.method === 'GET' && m) {
      const e = this.byLeaf.get(m[1]!.slice(-64));
      if (!e) return send(404, { code: 404, message: 'entry not found' });
      if (slow) await new Promise((r) => setTimeout(r, slow));
      return send(200, this.view(e));
    }
    // GET /api/v1/log/entries?logIndex=N: the entry at an index, as Rekor v1 serves it.
    if (req.method === 'GET' && path === '/api/v1/log/entries') {
      const q = new URLSearchParams((req.url ?? '').split('?')[1] ?? '').get('logIndex') ?? '';
      const e = /^(0|[1-9][0-9]*)$/.test(q) ? this.entries.find((x) => x.logIndex === Number(q)) : undefined;
      return e ? send(200, this.view(e)) : send(404, { code: 404, message: 'entry not found' });
    }
    if (req.method !== 'POST' || path !== '/api/v1/log/entries') return send(404, { code: 404, message: 'no such route' });

    let proposed: {
      apiVersion?: string;
      kind?: string;
      spec?: { data?: { hash?: { algorithm?: string; value?: string } }; signature?: { content?: string; publicKey?: { content?: string } } };
    };
    try {
      proposed = JSON.parse(body.toString('utf8'));
    } catch {
      return send(400, { code: 400, message: 'bad json' });
    }
    const hash = proposed.spec?.data?.hash;
    const sigB64 = proposed.spec?.signature?.content;
    const keyB64 = proposed.spec?.signature?.publicKey?.content;
    if (
      proposed.kind !== 'hashedrekord' ||
      proposed.apiVersion !== '0.0.1' ||
      hash?.algorithm !== 'sha256' ||
      !/^[0-9a-f]{64}$/.test(hash.value ?? '') ||
      !sigB64 ||
      !keyB64
    ) {
      return send(400, { code: 400, message: 'not a hashedrekord 0.0.1 entry' });
    }
    // Rekor: the signature must verify over the digest with the embedded key.
    let ok = false;
    try {
      const { createPublicKey } = await import('node:crypto');
      const jwk = createPublicKey(Buffer.from(keyB64, 'base64').toString('utf8')).export({ format: 'jwk' });
      if (jwk.crv !== 'P-256') throw new Error('not P-256');
      const pub = Buffer.concat([Buffer.from([4]), Buffer.from(jwk.x!, 'base64url'), Buffer.from(jwk.y!, 'base64url')]);
      ok = p256.verify(Buffer.from(sigB64, 'base64'), Buffer.from(hash.value!, 'hex'), pub, { prehash: false, format: 'der' });
    } catch {
      ok = false;
    }
    if (!ok) return send(400, { code: 400, message: 'signature verification failed' });

    const canonical = Buffer.from(
      canonicalJSON({
        apiVersion: '0.0.1',
        kind: 'hashedrekord',
        spec: { data: { hash: { algorithm: 'sha256', value: hash.value } }, signature: { content: sigB64, publicKey: { content: keyB64 } } },
      }),
    );
    const leaf = leafHash(canonical);
    const uuid = Buffer.from(leaf).toString('hex');
    const existing = this.byLeaf.get(uuid);
    if (existing) {
      return send(
        409,
        { code: 409, message: `an equivalent entry already exists in the transparency log with UUID ${TREE_ID_HEX + uuid}` },
        { Location: `/api/v1/log/entries/${TREE_ID_HEX + uuid}` },
      );
    }
    const logIndex = this.leaves.length;
    const integratedTime = this.clock();
    const setPayload = canonicalJSON({ body: canonical.toString('base64'), integratedTime, logID: this.logID.toString('hex'), logIndex });
    const set = cryptoSign('sha256', Buffer.from(setPayload), this.logKey).toString('base64');
    const e: StoredEntry = { uuid, body: canonical, logIndex, integratedTime, set, digest: hash.value! };
    this.leaves.push(leaf);
    this.entries.push(e);
    this.byLeaf.set(uuid, e);
    if (this.onCommit) await this.onCommit(e);
    if (slow) await new Promise((r) => setTimeout(r, slow));
    return send(201, this.view(e), { Location: `/api/v1/log/entries/${TREE_ID_HEX + uuid}` });
  }
}

const TREE_ID_HEX = BigInt(TREE_ID).toString(16).padStart(16, '0');
