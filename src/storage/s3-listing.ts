/**
 * An S3 store that lists keys with their etags (ObjectStore.listObjects): ListObjectsV2 returns
 * each key's ETag and LastModified with the key, up to 1000 keys a request, so a reader that
 * wants to know which of many small mutable objects changed (the cluster's leases and member
 * objects, src/cluster) pays one request per 1000 objects instead of a GET each.
 *
 * The ETag of a listing is the ETag a GET of the same version answers (Amazon S3 API Reference,
 * ListObjectsV2: "Object.ETag ... The entity tag is a hash of the object"; both are the quoted
 * MD5 for a single-part PUT), so an etag from the listing can be compared with one from get() or
 * putMutable(), and passed as an If-Match.
 */
import { ListObjectsV2Command, type S3Client } from '@aws-sdk/client-s3';
import { checkPrefix, type ListedObject } from './object-store.js';
import { S3Store, s3Error, type S3StoreOptions } from './s3-store.js';

/** ListObjectsV2's own limit per page. */
export const LIST_PAGE_MAX = 1000;

export interface ListingS3StoreOptions extends S3StoreOptions {
  /** Keys per ListObjectsV2 page (1 to 1000, default 1000); tests page with fewer. */
  readonly pageSize?: number;
}

export class ListingS3Store extends S3Store {
  private readonly lister: S3Client;
  private readonly listBucket: string;
  private readonly keyPrefix: string;
  private readonly pageSize: number;

  constructor(client: S3Client, opts: ListingS3StoreOptions) {
    super(client, opts);
    this.lister = client;
    this.listBucket = opts.bucket;
    this.keyPrefix = opts.prefix ?? '';
    const page = opts.pageSize ?? LIST_PAGE_MAX;
    if (!Number.isSafeInteger(page) || page < 1 || page > LIST_PAGE_MAX) throw new RangeError(`list page size ${page}: want 1 to ${LIST_PAGE_MAX}`);
    this.pageSize = page;
  }

  async listObjects(prefix: string): Promise<ListedObject[]> {
    checkPrefix(prefix);
    const out: ListedObject[] = [];
    let token: string | undefined;
    do {
      let page;
      try {
        page = await this.lister.send(
          new ListObjectsV2Command({ Bucket: this.listBucket, Prefix: this.keyPrefix + prefix, ContinuationToken: token, MaxKeys: this.pageSize }),
        );
      } catch (e) {
        throw s3Error('list', `${this.where}${prefix}`, e);
      }
      for (const o of page.Contents ?? []) {
        if (o.Key === undefined || o.ETag === undefined || o.Size === undefined) continue;
        out.push({ key: o.Key.slice(this.keyPrefix.length), etag: o.ETag, size: o.Size, ...(o.LastModified ? { lastModified: o.LastModified } : {}) });
      }
      token = page.IsTruncated ? page.NextContinuationToken : undefined;
    } while (token);
    // S3 lists in UTF-8 binary order; sorting again keeps the contract for servers that do not.
    return out.sort((a, b) => Buffer.compare(Buffer.from(a.key), Buffer.from(b.key)));
  }
}
