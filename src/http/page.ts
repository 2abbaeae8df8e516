/**
 * The service's pages for people, and its keys for scripts:
 *
 *   GET /           the tenants the caller may read (public ones; a private one only with its read token)
 *   GET /<t>/       one log: origin, verifier keys, checkpoint, witnesses, latest Rekor anchor,
 *                   routes, and how to verify it (page-html.ts renders it)
 *   GET /<t>/vkeys  the verifier keys as text/plain, one per line: the bytes of checkpoints/<t>/vkeys
 *
 * None of these names can be a tlog-tiles path (`checkpoint`, `tile/...`) or an API route.
 * A private tenant's page and keys are reads like any other: without its read token they get
 * the same 401 JSON as its checkpoint, and `/` does not name it.
 */
import { Hono, type Context } from 'hono';
import { latestReceipt } from '../anchor/index.js';
import type { Tenant, TenantRegistry } from '../tenants/registry.js';
import { authorizeRead, mayRead } from './auth.js';
import type { TenantOf } from './app.js';
import { PAGE_HEADERS, renderIndex, renderTenantPage, type AnchorView, type TenantView } from './page-html.js';

async function anchorOf(c: Context, t: Tenant): Promise<AnchorView | null> {
  try {
    const latest = await latestReceipt(t.log.paths.historyDir, t.log.paths.stateDir);
    if (!latest) return t.anchorer ? { state: 'none-yet' } : null;
    return { state: 'receipt', entry: latest.entry, rekor: latest.rekor };
  } catch (e) {
    // The page still shows the rest; the reason (it may name paths) goes to the operator only.
    c.get('log')?.warn({ tenant: t.name, err: (e as Error).message }, 'page: the anchor receipts could not be read');
    return { state: 'unreadable' };
  }
}

/** Everything the tenant page shows, read at the time of the request. */
async function viewOf(c: Context, t: Tenant): Promise<TenantView> {
  const published = t.log.published;
  const url = new URL(c.req.url);
  return {
    name: t.name,
    origin: t.log.origin,
    vkeys: t.log.verifierKeys(),
    base: `${url.protocol}//${url.host}/${t.name}`,
    treeSize: published.treeSize,
    rootHash: Buffer.from(published.rootHash).toString('base64'),
    committedSize: t.log.committed.treeSize,
    signedAt: t.publishedAt,
    witnesses: t.cosigner ? { mode: t.cosigner.mode, quorum: t.cosigner.policy.quorum, list: t.cosigner.witnessStatus() } : null,
    anchor: await anchorOf(c, t),
    private: t.auth.readTokens !== null,
    now: Math.floor(Date.now() / 1000),
  };
}

function html(c: Context, body: string): Response {
  for (const [k, v] of Object.entries(PAGE_HEADERS)) c.header(k, v);
  return c.body(body);
}

export function pageRoutes(tenants: TenantRegistry, tenantOf: TenantOf): Hono {
  const app = new Hono();

  app.get('/', (c) => {
    const shown = tenants
      .all()
      .filter((t) => mayRead(c, t))
      .sort((a, b) => (a.name < b.name ? -1 : 1))
      .map((t) => ({ name: t.name, origin: t.log.origin, treeSize: t.log.published.treeSize }));
    return html(c, renderIndex(shown));
  });

  app.get('/:tenant/', async (c) => {
    const t = tenantOf(c);
    authorizeRead(c, t);
    return html(c, renderTenantPage(await viewOf(c, t)));
  });

  // The same bytes as checkpoints/<t>/vkeys (written by Log.init), so scripts need not scrape.
  app.get('/:tenant/vkeys', (c) => {
    const t = tenantOf(c);
    authorizeRead(c, t);
    c.header('Content-Type', 'text/plain; charset=utf-8');
    c.header('Cache-Control', 'no-cache');
    c.header('X-Content-Type-Options', 'nosniff');
    return c.body(t.log.verifierKeys().join('\n') + '\n');
  });

  return app;
}
