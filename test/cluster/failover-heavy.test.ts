/**
 * The heavy variant of cluster.test.ts's kills (vitest.config.ts HEAVY_SUITES): three nodes, ten
 * tenants, 50 SIGKILLs of a tenant's holder under load, each killed node started again; then
 * every acknowledged entry is at its index, the store's history holds one root per size, and
 * every tenant passes `tlog verify` and the Go reference checker. Fail-over times are printed
 * (from the SIGKILL to the first append of the tenant acknowledged by another node), never
 * asserted: the machine's load decides them.
 */
import { afterAll, beforeAll, expect, it } from 'vitest';
import { ensureDist } from '../helpers/dist.js';
import { auditTenant, killUnderLoad, TestCluster } from './helpers.js';

const KILLS = Number(process.env.TLOG_CLUSTER_KILLS ?? 50);
let c: TestCluster;

beforeAll(async () => {
  ensureDist();
  c = new TestCluster(3, 10, 3);
  await c.start();
}, 180_000);

afterAll(async () => {
  await c?.close();
}, 180_000);

it(`${KILLS} SIGKILLs of tenant holders under load, each restarted: nothing acknowledged lost, no fork, verify and the Go checker pass`, async () => {
  await c.untilSpread();
  const run = await killUnderLoad(c, KILLS);
  const sorted = [...run.failoverMs].sort((a, b) => a - b);
  const q = (p: number) => sorted[Math.min(sorted.length - 1, Math.floor(p * sorted.length))]!;
  console.log(
    `fail-over over ${KILLS} kills (lease ttl 3 s): p50 ${(q(0.5) / 1000).toFixed(2)} s, p99 ${(q(0.99) / 1000).toFixed(2)} s, max ${(sorted.at(-1)! / 1000).toFixed(2)} s`,
  );
  await c.untilSpread();
  let total = 0;
  for (const t of c.tenants) {
    const acked = run.acked.get(t)!;
    total += acked.size;
    expect(await auditTenant(c, c.url(0), t, acked)).toBeGreaterThanOrEqual(acked.size);
  }
  console.log(`${total} acknowledged entries checked`);
}, 3_600_000);
