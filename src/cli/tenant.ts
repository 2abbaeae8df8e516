/**
 * `tlog tenant add` and `tlog token new`: configuration changes a running service picks up on
 * SIGHUP or POST /admin/reload, without a restart.
 */
import type { Command } from 'commander';
import { randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { parseDocument } from 'yaml';
import { loadConfig, validateConfig } from '../config/config.js';
import { TlogError, ErrorCode } from '../errors.js';
import { hashToken } from '../http/auth.js';
import { initLog } from '../tenants/registry.js';
import { logPaths } from '../tile-store/paths.js';
import { writeFileDurably } from '../storage/durable.js';

function newToken(): string {
  return `tlog_${randomBytes(24).toString('base64url')}`;
}

export function registerTenantCommands(program: Command): void {
  const tenant = program.command('tenant').description('tenants of a service configuration');
  tenant
    .command('add')
    .description('add a tenant to a configuration file and create its log; then reload the service (SIGHUP or POST /admin/reload)')
    .requiredOption('--config <file>', 'the YAML or JSON configuration file to edit')
    .requiredOption('--name <tenant>', 'tenant name (URL prefix)')
    .requiredOption('--origin <origin>', 'log origin, e.g. example.com/logs/audit')
    .option('--token-hash <sha256hex>', 'accept the bearer token with this SHA-256 (see `tlog token new`)')
    .option('--new-token', 'make a new bearer token for this tenant and print it (only its hash is stored)')
    .option('--allow-duplicates', 'keep repeated entries instead of answering with the first copy')
    .action(async (o: { config: string; name: string; origin: string; tokenHash?: string; newToken?: boolean; allowDuplicates?: boolean }) => {
      const text = readFileSync(o.config, 'utf8');
      const isJson = o.config.endsWith('.json');
      const doc = isJson ? null : parseDocument(text);
      const raw = (isJson ? JSON.parse(text) : doc!.toJS()) as { tenants?: unknown[] };
      const token = o.newToken ? newToken() : undefined;
      const tokens = [...(o.tokenHash ? [o.tokenHash] : []), ...(token ? [hashToken(token)] : [])];
      if (tokens.length === 0) throw new TlogError(ErrorCode.badInput, 'a configured tenant needs credentials: give --token-hash or --new-token');
      const entry = { name: o.name, origin: o.origin, ...(o.allowDuplicates ? { allowDuplicates: true } : {}), credentials: { tokens } };
      const next = { ...raw, tenants: [...(raw.tenants ?? []), entry] };
      validateConfig(next, o.config); // names the bad field, and refuses a tenant listed twice
      let out: string;
      if (doc) {
        if (!doc.has('tenants')) doc.set('tenants', []);
        (doc.get('tenants') as { add(v: unknown): void }).add(doc.createNode(entry));
        out = doc.toString();
      } else out = JSON.stringify(next, null, 2) + '\n';
      // Create the log before the configuration names it, so a reload finds it ready.
      const cfg = loadConfig(o.config);
      const log = await initLog(logPaths({ tilesRoot: cfg.tilesDir, checkpointsRoot: cfg.checkpointsDir, stateRoot: cfg.stateDir }, o.name), o.origin);
      await log.close();
      await writeFileDurably(o.config, out, 0o600);
      process.stdout.write(`added tenant ${o.name} (origin ${o.origin}) to ${o.config}\nverifier keys:\n${log.verifierKeys().join('\n')}\n`);
      if (token) process.stdout.write(`bearer token (shown once, only its hash is stored):\n${token}\n`);
      process.stdout.write('reload the running service: kill -HUP <pid>, or POST /admin/reload with the admin token\n');
    });

  program
    .command('token')
    .description('bearer tokens')
    .command('new')
    .description('print a new random bearer token and the SHA-256 to put in the configuration')
    .action(() => {
      const t = newToken();
      process.stdout.write(`token  ${t}\nsha256 ${hashToken(t)}\n`);
    });
}
