/**
 * The real Rekor v2 server for tests: sigstore/rekor-tiles v2.3.0, cmd/rekor-server/posix
 * (Tessera's POSIX backend: no GCP, AWS or Spanner), built from the Go module proxy by the
 * module in test/interop/go/rekortiles. v2.3.0 is the newest release whose go.mod accepts Go
 * 1.26 (v2.4.x asks for 1.27). Its checkpoint and tiles are served from the storage directory
 * by a small static server, as a CDN serves a public v2 shard.
 */
import { generateKeyPairSync } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import http from 'node:http';
import type net from 'node:net';
import path from 'node:path';
import { repoRoot } from '../helpers/dist.js';
import { buildGoTool } from '../helpers/go-tools.js';
import { freePort, spawnServer, stopChild, untilAnswers, type ServerProcess } from '../helpers/processes.js';

const moduleDir = path.join(repoRoot, 'test/interop/go/rekortiles');
const PKG = 'github.com/sigstore/rekor-tiles/v2/cmd/rekor-server/posix';
let binary = '';

/** Builds the server once (a no-op when the binary is up to date). A missing `go` fails loudly. */
export function buildRekorTiles(): void {
  binary = buildGoTool(moduleDir, PKG, 'rekor-server-posix');
}

export class RekorTiles {
  /** The checkpoint origin: @sigstore/verify matches the signer name against the log URL. */
  readonly origin = '127.0.0.1';
  readonly publicKeyPem: string;
  url = '';
  readUrl = '';
  private server: ServerProcess | null = null;
  private statics: http.Server | null = null;
  private ports: number[] = [];

  constructor(
    private readonly dir: string,
    keyType: 'ec' | 'ed25519' = 'ec',
  ) {
    mkdirSync(path.join(dir, 'storage'), { recursive: true });
    const { privateKey, publicKey } = keyType === 'ec' ? generateKeyPairSync('ec', { namedCurve: 'P-256' }) : generateKeyPairSync('ed25519');
    writeFileSync(path.join(dir, 'log-key.pem'), privateKey.export({ type: 'pkcs8', format: 'pem' }) as string, { mode: 0o600 });
    this.publicKeyPem = publicKey.export({ type: 'spki', format: 'pem' }) as string;
  }

  /** Starts (or restarts, on the same ports and storage) and waits for /healthz. */
  async start(): Promise<void> {
    if (this.ports.length === 0) this.ports = [await freePort(), await freePort(), await freePort()];
    const [httpPort, grpcPort, metricsPort] = this.ports as [number, number, number];
    this.url = `http://127.0.0.1:${httpPort}`;
    this.server = spawnServer(binary, [
      'serve',
      '--storage-dir',
      path.join(this.dir, 'storage'),
      '--signer-filepath',
      path.join(this.dir, 'log-key.pem'),
      '--hostname',
      this.origin,
      '--http-address',
      '127.0.0.1',
      '--http-port',
      String(httpPort),
      '--grpc-address',
      '127.0.0.1',
      '--grpc-port',
      String(grpcPort),
      '--http-metrics-port',
      String(metricsPort),
      '--checkpoint-interval',
      '100ms',
      '--batch-max-age',
      '20ms',
    ]);
    await untilAnswers('rekor-tiles /healthz', this.server, `${this.url}/healthz`);
    if (!this.statics) {
      const storage = path.join(this.dir, 'storage');
      this.statics = http.createServer((req, res) => {
        const rel = decodeURIComponent((req.url ?? '/').split('?')[0]!).replace(/^\/+/, '');
        const file = path.join(storage, rel);
        if (rel.includes('..') || !existsSync(file)) {
          res.writeHead(404).end();
          return;
        }
        res.writeHead(200).end(readFileSync(file));
      });
      await new Promise<void>((r) => this.statics!.listen(0, '127.0.0.1', r));
      this.readUrl = `http://127.0.0.1:${(this.statics.address() as net.AddressInfo).port}`;
    }
  }

  async stop(): Promise<void> {
    await stopChild(this.server?.proc);
  }

  /** What the server wrote since its last start. */
  get logs(): string {
    return this.server?.output() ?? '';
  }

  async close(): Promise<void> {
    await this.stop();
    await new Promise<void>((r) => (this.statics ? this.statics.close(() => r()) : r()));
  }

  async treeSize(): Promise<number> {
    return Number((await (await fetch(`${this.readUrl}/checkpoint`)).text()).split('\n')[1]);
  }

  config() {
    return { apiVersion: 'v2' as const, url: this.url, readUrl: this.readUrl, publicKey: this.publicKeyPem, origin: this.origin };
  }
}
