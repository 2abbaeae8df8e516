/**
 * `tlog tenant add | list | retire` and `tlog token new | hash`: the tenants of a service
 * configuration, changed in the file (YAML keeps its comments) and picked up by a running
 * service on SIGHUP or POST /admin/reload, without a restart.
 *
 * A tenant is never deleted: a write-once log is evidence. `retire` stops its writes and keeps
 * serving everything it holds (reads, proofs, tiles, its page).
 */
import type { Command } from 'commander';
import { randomBytes } from 'node:crypto';
import { existsSync, promises as fsp, readFileSync, statSync } from 'node:fs';
import path from 'node:path';
import { Document, parseDocument, type YAMLSeq } from 'yaml';
import { loadConfig, validateConfig, type ServiceConfig } from '../config/config.js';
import { errnoWords, TlogError, ErrorCode } from '../errors.js';
import { hashToken } from '../http/auth.js';
import { initLog } from '../tenants/registry.js';
import { readLogConfig } from '../log/log.js';
import { logPaths, type DataRoots } from '../tile-store/paths.js';
import { writeFileDurably } from '../storage/durable.js';

function newToken(): string {
  return `tlog_${randomBytes(24).toString('base64url')}`;
}

/** A configuration file as text and as data: YAML as a document (its comments kept), JSON as an object. */
interface ConfigFile {
  readonly file: string;
  readonly raw: { tenants?: unknown[] } & Record<string, unknown>;
  readonly doc: Document | null;
  /** False when the file does not exist yet. */
  readonly exists: boolean;
}

function readConfigFile(file: string, mayBeMissing = false): ConfigFile {
  const isJson = file.endsWith('.json');
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    if (code === 'ENOENT' && mayBeMissing) {
      const dir = path.dirname(path.resolve(file));
      if (!existsSync(dir) || !statSync(dir).isDirectory())
        throw new TlogError(ErrorCode.badInput, `cannot create configuration ${file}: directory ${dir} does not exist`);
      return { file, raw: { tenants: [] }, doc: isJson ? null : new Document({ tenants: [] }), exists: false };
    }
    if (code === 'ENOENT')
      throw new TlogError(ErrorCode.badInput, `configuration ${file} does not exist (\`tlog tenant add --config ${file} ...\` creates it)`);
    throw new TlogError(ErrorCode.badInput, `cannot read configuration ${file}: ${errnoWords(e)}`);
  }
  try {
    const doc = isJson ? null : parseDocument(text);
    if (doc && doc.errors.length > 0) throw doc.errors[0];
    const raw = (isJson ? JSON.parse(text) : doc!.toJS()) as ConfigFile['raw'];
    if (raw === null || typeof raw !== 'object' || Array.isArray(raw)) throw new Error('not a mapping of settings');
    return { file, raw, doc, exists: true };
  } catch (e) {
    throw new TlogError(ErrorCode.badInput, `configuration ${file} does not parse: ${(e as Error).message.split('\n')[0]}`);
  }
}

/** The file's text with `next` (already validated) written the way the file is written. */
function configText(c: ConfigFile, next: ConfigFile['raw'], edit: (doc: Document) => void): string {
  if (!c.doc) return JSON.stringify(next, null, 2) + '\n';
  edit(c.doc);
  const header = c.exists ? '' : '# The tenants `tlog serve --config` serves; every setting is described in the README ("The HTTP service").\n';
  return header + c.doc.toString();
}

function rootsOf(file: string, cfg: ServiceConfig): DataRoots {
  const base = path.dirname(path.resolve(file));
  return { tilesRoot: path.resolve(base, cfg.tilesDir), checkpointsRoot: path.resolve(base, cfg.checkpointsDir), stateRoot: path.resolve(base, cfg.stateDir) };
}

const RELOAD_HINT = 'reload the running service: kill -HUP <pid>, or POST /admin/reload with the admin token\n';

/** The tree size in a tenant's published checkpoint (its second line), or null when it has none. */
async function publishedSize(roots: DataRoots, tenant: string): Promise<number | null> {
  try {
    const text = await fsp.readFile(path.join(logPaths(roots, tenant).tilesDir, 'checkpoint'), 'utf8');
    const n = Number(text.split('\n')[1]);
    return Number.isSafeInteger(n) ? n : null;
  } catch {
    return null;
  }
}

/** All of stdin as text. */
async function readStdin(): Promise<string> {
  const chunks: Buffer[] = [];
  for await (const c of process.stdin) chunks.push(c as Buffer);
  return Buffer.concat(chunks).toString('utf8');
}

export function registerTenantCommands(program: Command, getRoots: () => DataRoots): void {
  const tenant = program.command('tenant').description('tenants of a service configuration (add, list, retire); a running service picks changes up on reload');
  tenant
    .command('add')
    .description('add a tenant to a configuration file (created if missing) and create its log; then reload the service (SIGHUP or POST /admin/reload)')
    .requiredOption('--config <file>', 'the YAML or JSON configuration file to edit (created when it does not exist)')
    .requiredOption('--name <tenant>', 'tenant name (URL prefix)')
    .requiredOption('--origin <origin>', 'log origin, e.g. example.com/logs/audit')
    .option('--token-hash <sha256hex>', 'accept the bearer token with this SHA-256 (see `tlog token hash`)')
    .option('--new-token', 'make a new bearer token for this tenant and print it (only its hash is stored)')
    .option('--allow-duplicates', 'keep repeated entries instead of answering with the first copy')
    .action(async (o: { config: string; name: string; origin: string; tokenHash?: string; newToken?: boolean; allowDuplicates?: boolean }) => {
      const c = readConfigFile(o.config, true);
      // An existing file must load as it is (policy files and all) before it is changed.
      if (c.exists) loadConfig(o.config);
      const token = o.newToken ? newToken() : undefined;
      const tokens = [...(o.tokenHash ? [o.tokenHash] : []), ...(token ? [hashToken(token)] : [])];
      if (tokens.length === 0) throw new TlogError(ErrorCode.badInput, 'a configured tenant needs credentials: give --token-hash or --new-token');
      const entry = { name: o.name, origin: o.origin, ...(o.allowDuplicates ? { allowDuplicates: true } : {}), credentials: { tokens } };
      const next = { ...c.raw, tenants: [...(c.raw.tenants ?? []), entry] };
      const cfg = validateConfig(next, o.config); // names the bad field, and refuses a tenant listed twice
      const out = configText(c, next, (doc) => {
        if (!doc.has('tenants')) doc.set('tenants', []);
        const seq = doc.get('tenants') as YAMLSeq;
        seq.add(doc.createNode(entry));
        // `tenants: []` is written inline; a list of tenants reads better one per block.
        seq.flow = false;
      });
      // Create the log before the configuration names it, so a reload finds it ready. A log of
      // that name with that origin is kept (a tenant served again); another origin is refused.
      const roots = rootsOf(o.config, cfg);
      const paths = logPaths(roots, o.name);
      let vkeys: string[];
      let kept = false;
      if (existsSync(path.join(paths.stateDir, 'log.json'))) {
        const existing = await readLogConfig(paths.stateDir);
        if (existing.origin !== o.origin) {
          throw new TlogError(
            ErrorCode.conflict,
            `a log "${o.name}" exists in ${roots.stateRoot} with origin ${existing.origin}: give --origin ${existing.origin} to serve it again, or another --name`,
          );
        }
        vkeys = (await fsp.readFile(path.join(paths.historyDir, 'vkeys'), 'utf8').catch(() => '')).split('\n').filter((l) => l !== '');
        kept = true;
      } else {
        const log = await initLog(paths, o.origin);
        await log.close();
        vkeys = log.verifierKeys();
      }
      await writeFileDurably(o.config, out, 0o600);
      process.stdout.write(
        `${c.exists ? 'added' : 'created ' + o.config + ' with'} tenant ${o.name} (origin ${o.origin})${c.exists ? ` to ${o.config}` : ''}` +
          `${kept ? `; its log existed and is kept (size ${(await publishedSize(roots, o.name)) ?? 0})` : ''}\nverifier keys:\n${vkeys.join('\n')}\n`,
      );
      if (token) process.stdout.write(`bearer token (shown once, only its hash is stored):\n${token}\n`);
      process.stdout.write(RELOAD_HINT);
    });

  tenant
    .command('list')
    .description('list the tenants of a configuration (or, without --config, the logs under the data directories): name, origin, published size, state')
    .option('--config <file>', 'the configuration file (env TLOG_CONFIG)', process.env.TLOG_CONFIG)
    .option('--json', 'print one JSON object per tenant')
    .action(async (o: { config?: string; json?: boolean }) => {
      type Row = { name: string; origin: string | null; treeSize: number | null; state: 'serving' | 'retired' | 'local'; reads: 'public' | 'private' | null };
      let rows: Row[];
      if (o.config) {
        readConfigFile(o.config); // a missing file is named as such
        const cfg = loadConfig(o.config);
        const roots = rootsOf(o.config, cfg);
        rows = await Promise.all(
          cfg.tenants.map(async (t) => ({
            name: t.name,
            origin: t.origin,
            treeSize: await publishedSize(roots, t.name),
            state: t.retired ? ('retired' as const) : ('serving' as const),
            reads: t.credentials.readTokens ? ('private' as const) : ('public' as const),
          })),
        );
      } else {
        const roots = getRoots();
        let names: string[] = [];
        try {
          names = (await fsp.readdir(roots.stateRoot)).filter((n) => existsSync(path.join(roots.stateRoot, n, 'log.json'))).sort();
        } catch {
          // no state directory: no logs
        }
        rows = await Promise.all(
          names.map(async (name) => {
            let origin: string | null = null;
            try {
              origin = (JSON.parse(await fsp.readFile(path.join(roots.stateRoot, name, 'log.json'), 'utf8')) as { origin?: string }).origin ?? null;
            } catch {
              // unreadable: shown without origin
            }
            return { name, origin, treeSize: await publishedSize(roots, name), state: 'local' as const, reads: null };
          }),
        );
      }
      if (o.json) {
        process.stdout.write(rows.map((r) => JSON.stringify(r) + '\n').join(''));
        return;
      }
      if (rows.length === 0) {
        process.stdout.write(o.config ? `no tenants in ${o.config}\n` : `no logs under ${getRoots().stateRoot}\n`);
        return;
      }
      const table = [
        ['NAME', 'ORIGIN', 'SIZE', 'STATE', ...(o.config ? ['READS'] : [])],
        ...rows.map((r) => [r.name, r.origin ?? '?', r.treeSize === null ? '(no log)' : String(r.treeSize), r.state, ...(o.config ? [r.reads ?? ''] : [])]),
      ];
      const widths = table[0]!.map((_, i) => Math.max(...table.map((row) => row[i]!.length)));
      process.stdout.write(table.map((row) => row.map((cell, i) => (i === row.length - 1 ? cell : cell.padEnd(widths[i]!))).join('  ')).join('\n') + '\n');
    });

  tenant
    .command('retire')
    .description(
      'retire a tenant: it takes no more appends (410 tenant_retired) and keeps serving its log, proofs and tiles; the log is never deleted. Then reload the service',
    )
    .requiredOption('--config <file>', 'the YAML or JSON configuration file to edit')
    .requiredOption('--name <tenant>', 'the tenant to retire')
    .action((o: { config: string; name: string }) => {
      const c = readConfigFile(o.config);
      loadConfig(o.config); // the file must load as it is before it is changed
      const list = (c.raw.tenants ?? []) as { name?: unknown; retired?: unknown }[];
      const i = list.findIndex((t) => t?.name === o.name);
      if (i < 0) {
        const names = list.map((t) => String(t?.name));
        throw new TlogError(
          ErrorCode.notFound,
          `no tenant ${o.name} in ${o.config} (${names.length > 0 ? `tenants: ${names.join(', ')}` : 'it has no tenants'})`,
        );
      }
      if (list[i]!.retired === true) {
        process.stdout.write(`tenant ${o.name} is retired already in ${o.config}; nothing changed\n`);
        return;
      }
      const tenants = list.map((t, j) => (j === i ? { ...t, retired: true } : t));
      const next = { ...c.raw, tenants };
      validateConfig(next, o.config);
      const out = configText(c, next, (doc) => doc.setIn(['tenants', i, 'retired'], true));
      return writeFileDurably(o.config, out, 0o600).then(() => {
        process.stdout.write(
          `retired tenant ${o.name} in ${o.config}: once reloaded, it takes no more appends and keeps serving its log, proofs and tiles\n${RELOAD_HINT}`,
        );
      });
    });

  const token = program.command('token').description('bearer tokens');
  token
    .command('new')
    .description('print a new random bearer token and the SHA-256 to put in the configuration')
    .action(() => {
      const t = newToken();
      process.stdout.write(`token  ${t}\nsha256 ${hashToken(t)}\n`);
    });
  token
    .command('hash')
    .description('print the SHA-256 of a bearer token read from stdin (what the configuration stores), e.g. printf %s "$TOKEN" | tlog token hash')
    .action(async () => {
      // One line: a final newline (echo's) is not part of the token.
      const t = (await readStdin()).replace(/\r?\n$/, '');
      if (t === '') throw new TlogError(ErrorCode.badInput, 'no token on stdin: printf %s "$TOKEN" | tlog token hash');
      if (/[\s]/.test(t)) throw new TlogError(ErrorCode.badInput, 'the token on stdin holds whitespace or several lines: give one token');
      process.stdout.write(`${hashToken(t)}\n`);
    });
}
