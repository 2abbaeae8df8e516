/**
 * The signed-request counters of a cluster's tenant (tenants/counters.ts), kept in the store as
 * the mutable object `counters/<tenant>` at the bucket prefix, beside `leases/<tenant>`: outside
 * the tenant's own prefix, which is its public tlog-tiles URL space (a CDN may serve it). A node
 * that takes the tenant over reads them, so a request the last holder accepted is refused as a
 * replay here too; its local cache, wiped on take-over, could not tell.
 *
 * Each write is If-Match the version this node read or wrote last ('absent' for the first), so
 * a node that lost the tenant cannot write over the counters of the node that took it: its
 * write fails, and the request waiting for it is refused, not served. Counters only grow, so a
 * snapshot never repeats an earlier one's bytes (object-store.ts: etags come from content).
 */
import { TlogError, ErrorCode } from '../errors.js';
import { isPreconditionFailed, type Expected, type ObjectStore } from '../storage/object-store.js';

export function countersKey(tenant: string): string {
  return `counters/${tenant}`;
}

/** A JSON document kept durably (tenants/counters.ts CounterPersistence has this shape). */
export interface StoredDocument {
  readonly where: string;
  load(): Promise<string | null>;
  save(json: string): Promise<void>;
}

/** Counters persisted in `store` (the bucket, not a tenant's prefix) for `tenant`. */
export function storeCounters(store: ObjectStore, tenant: string): StoredDocument {
  const key = countersKey(tenant);
  let expected: Expected = 'absent';
  return {
    where: `${store.where}${key}`,
    async load() {
      const o = await store.get(key);
      if (!o) return null;
      expected = { etag: o.etag };
      return Buffer.from(o.bytes).toString('utf8');
    },
    async save(json) {
      try {
        const etag = await store.putMutable(key, Buffer.from(json, 'utf8'), expected, { contentType: 'application/json', cacheControl: 'no-store' });
        expected = { etag };
      } catch (e) {
        if (isPreconditionFailed(e)) {
          throw new TlogError(ErrorCode.conflict, `${store.where}${key} was written by another node: this node no longer holds tenant ${tenant}`, { cause: e });
        }
        throw e;
      }
    },
  };
}
