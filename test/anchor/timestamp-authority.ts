/**
 * The real RFC 3161 timestamp authority for tests: sigstore/timestamp-authority v2.2.1,
 * cmd/timestamp-server, built from the Go module proxy by the module in test/interop/go/tsa
 * (its go.mod asks for go1.27; the `toolchain` line there makes the go command fetch it).
 *
 * Two signers: `memory` (the server makes a fresh key and chain at every start) and `file` (a
 * key and chain made here once with openssl, so the same TSA comes back after a restart). Either
 * way the chain is fetched once from /api/v1/timestamp/certchain at start and written to
 * `chainFile`: that file is what a tenant's configuration trusts (the service never fetches it).
 */
import { execFileSync, spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { chmodSync, copyFileSync, cpSync, existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import path from 'node:path';
import { repoRoot } from '../helpers/dist.js';
import { buildGoTool, goBinDir, goEnv } from '../helpers/go-tools.js';
import { freePort, spawnServer, stopChild, untilAnswers, type ServerProcess } from '../helpers/processes.js';
import { removeDir } from '../helpers/temp-dirs.js';

const moduleDir = path.join(repoRoot, 'test/interop/go/tsa');
const TSA_MODULE = 'github.com/sigstore/timestamp-authority/v2';
const PKG = `${TSA_MODULE}/cmd/timestamp-server`;
let binary = '';

/**
 * Builds the server once (a no-op when the binary is up to date). A missing `go` fails loudly.
 * Upstream binds its metrics listener to the fixed port 2112, so a second server on the machine
 * (another test file, another checkout) dies at start. The build therefore uses a copy of the
 * module's source (from the module cache, where go build -overlay may not reach) with that one
 * file replaced by test/interop/go/tsa/_overlay/prometheus.go, which takes the address from
 * $TSA_METRICS_ADDR (we give port 0); every other package comes from the module cache as pinned.
 */
export function buildTimestampAuthority(): void {
  const replacement = path.join(moduleDir, '_overlay', 'prometheus.go');
  const go = (args: string[], cwd: string) => {
    const r = spawnSync('go', args, { cwd, env: goEnv(moduleDir), encoding: 'utf8', timeout: 900_000 });
    if (r.error || r.status !== 0) throw new Error(`go ${args.join(' ')}: ${r.error?.message ?? ''}\n${r.stderr}`);
    return r.stdout.trim();
  };
  binary = buildGoTool(moduleDir, PKG, 'timestamp-server', {
    inputs: [replacement],
    build: (out) => {
      const work = mkdtempSync(path.join(goBinDir, '.tsa-build-'));
      try {
        const src = path.join(work, 'src');
        cpSync(go(['list', '-m', '-f', '{{.Dir}}', TSA_MODULE], moduleDir), src, { recursive: true });
        // The module cache is read-only; the copy must be writable (and removable).
        for (const rel of ['', ...(readdirSync(src, { recursive: true }) as string[])]) {
          const p = path.join(src, rel);
          chmodSync(p, statSync(p).isDirectory() ? 0o755 : 0o644);
        }
        copyFileSync(replacement, path.join(src, 'pkg/server/prometheus.go'));
        const mod = path.join(work, 'mod');
        mkdirSync(mod);
        writeFileSync(path.join(mod, 'go.mod'), `${readFileSync(path.join(moduleDir, 'go.mod'), 'utf8')}\nreplace ${TSA_MODULE} => ../src\n`);
        copyFileSync(path.join(moduleDir, 'go.sum'), path.join(mod, 'go.sum'));
        go(['build', '-buildvcs=false', '-o', out, PKG], mod);
      } finally {
        removeDir(work);
      }
    },
  });
}

/** A root CA and a timestamping certificate under it (RFC 3161 2.3: critical EKU timeStamping only). */
function makeFileSignerIdentity(dir: string, name: string): { key: string; chain: string } {
  const key = path.join(dir, 'tsa-key.pem');
  const chain = path.join(dir, 'tsa-chain-configured.pem');
  if (existsSync(chain)) return { key, chain };
  const ssl = (...args: string[]) => execFileSync('openssl', args, { cwd: dir, stdio: ['ignore', 'pipe', 'pipe'] });
  ssl('ecparam', '-name', 'prime256v1', '-genkey', '-noout', '-out', 'root-key.pem');
  ssl(
    'req',
    '-new',
    '-x509',
    '-key',
    'root-key.pem',
    '-out',
    'root.pem',
    '-days',
    '3650',
    '-subj',
    `/O=tlog-worm tests/CN=${name} Root`,
    '-addext',
    'basicConstraints=critical,CA:TRUE',
    '-addext',
    'keyUsage=critical,keyCertSign,cRLSign',
  );
  ssl('ecparam', '-name', 'prime256v1', '-genkey', '-noout', '-out', 'tsa-key.pem');
  ssl('req', '-new', '-key', 'tsa-key.pem', '-out', 'tsa.csr', '-subj', `/O=tlog-worm tests/CN=${name}`);
  writeFileSync(
    path.join(dir, 'tsa.ext'),
    'basicConstraints=critical,CA:FALSE\nkeyUsage=critical,digitalSignature\nextendedKeyUsage=critical,timeStamping\nsubjectKeyIdentifier=hash\nauthorityKeyIdentifier=keyid\n',
  );
  ssl(
    'x509',
    '-req',
    '-in',
    'tsa.csr',
    '-CA',
    'root.pem',
    '-CAkey',
    'root-key.pem',
    '-CAcreateserial',
    '-out',
    'tsa.pem',
    '-days',
    '3650',
    '-extfile',
    'tsa.ext',
  );
  writeFileSync(chain, Buffer.concat([readFileSync(path.join(dir, 'tsa.pem')), readFileSync(path.join(dir, 'root.pem'))]));
  return { key, chain };
}

export class TimestampAuthority {
  url = '';
  /** The chain the server serves, fetched once at the first start. */
  chainPem = '';
  private server: ServerProcess | null = null;
  private port = 0;

  constructor(
    private readonly dir: string,
    private readonly signer: 'memory' | 'file' = 'file',
    private readonly name = 'tlog-worm test TSA',
  ) {
    mkdirSync(dir, { recursive: true });
  }

  /** Where the chain is written for a tenant's configuration. */
  get chainFile(): string {
    return path.join(this.dir, 'tsa-chain.pem');
  }

  /** Starts (or restarts, on the same port) and waits for /ping; fetches the chain on the first start. */
  async start(): Promise<void> {
    if (!this.port) this.port = await freePort();
    this.url = `http://127.0.0.1:${this.port}`;
    const signerArgs =
      this.signer === 'memory'
        ? ['--timestamp-signer', 'memory']
        : (() => {
            const id = makeFileSignerIdentity(this.dir, this.name);
            return ['--timestamp-signer', 'file', '--file-signer-key-path', id.key, '--certificate-chain-path', id.chain];
          })();
    this.server = spawnServer(
      binary,
      ['serve', '--host', '127.0.0.1', '--port', String(this.port), '--disable-ntp-monitoring', '--log-type', 'prod', ...signerArgs],
      {
        ...process.env,
        TSA_METRICS_ADDR: '127.0.0.1:0',
      },
    );
    await untilAnswers('timestamp-server /ping', this.server, `${this.url}/ping`);
    if (!this.chainPem) {
      const res = await fetch(`${this.url}/api/v1/timestamp/certchain`);
      if (!res.ok) throw new Error(`certchain: HTTP ${res.status}`);
      this.chainPem = await res.text();
      writeFileSync(this.chainFile, this.chainPem);
    }
  }

  async stop(): Promise<void> {
    await stopChild(this.server?.proc);
  }

  /** What the server wrote since its last start. */
  get logs(): string {
    return this.server?.output() ?? '';
  }

  /** What a tenant's anchoring configuration says about this TSA. */
  config(url = this.url) {
    return { url, certChain: this.chainPem };
  }
}

/** What a TsaProxy does to the requests and answers it passes on. */
export type Tamper = 'none' | 'other-bytes' | 'forge-time';

/**
 * A loopback proxy in front of a real TSA that can tamper: `other-bytes` asks the TSA to stamp
 * the SHA-256 of other bytes than the signature; `forge-time` moves the genTime in the answer by
 * a year (the TSA's signature over it then no longer holds). Counts the timestamps it passed on.
 */
export class TsaProxy {
  tamper: Tamper = 'none';
  passed = 0;
  url = '';
  private server: http.Server | null = null;

  constructor(private readonly target: () => string) {}

  async start(): Promise<void> {
    this.server = http.createServer(async (req, res) => {
      const chunks: Buffer[] = [];
      for await (const c of req) chunks.push(c as Buffer);
      let body = Buffer.concat(chunks);
      if (req.method === 'POST' && this.tamper === 'other-bytes') {
        const j = JSON.parse(body.toString('utf8')) as { artifactHash: string };
        j.artifactHash = createHash('sha256').update('other bytes').digest('base64');
        body = Buffer.from(JSON.stringify(j));
      }
      let up: Response;
      try {
        up = await fetch(this.target() + req.url, {
          method: req.method,
          headers: { 'content-type': req.headers['content-type'] ?? 'application/json' },
          body: req.method === 'POST' ? body : undefined,
        });
      } catch {
        res.writeHead(502).end();
        return;
      }
      let answer: Buffer = Buffer.from(await up.arrayBuffer());
      if (req.method === 'POST' && up.ok && this.tamper === 'forge-time') answer = forgeGenTime(answer);
      if (req.method === 'POST' && up.ok) this.passed++;
      res.writeHead(up.status, { 'content-type': up.headers.get('content-type') ?? 'application/octet-stream' }).end(answer);
    });
    await new Promise<void>((r) => this.server!.listen(0, '127.0.0.1', r));
    this.url = `http://127.0.0.1:${(this.server.address() as AddressInfo).port}`;
  }

  async close(): Promise<void> {
    await new Promise<void>((r) => (this.server ? this.server.close(() => r()) : r()));
  }
}

/** Moves the first GeneralizedTime (the TSTInfo's genTime, RFC 3161 2.4.2) a year back, in place. */
export function forgeGenTime(der: Buffer): Buffer {
  const out = Buffer.from(der);
  for (let i = 0; i + 2 < out.length; i++) {
    // GeneralizedTime: tag 0x18, short length, "YYYYMMDDhhmmss[.f]Z".
    const len = out[i + 1]!;
    if (out[i] !== 0x18 || len < 15 || len > 24 || i + 2 + len > out.length) continue;
    const text = out.subarray(i + 2, i + 2 + len).toString('latin1');
    if (!/^[0-9]{14}(\.[0-9]+)?Z$/.test(text)) continue;
    out.write(String(Number(text.slice(0, 4)) - 1), i + 2, 'latin1');
    return out;
  }
  throw new Error('no GeneralizedTime in the timestamp');
}
