/**
 * The package entry (`tlog-worm`): the verifying client for any c2sp.org/tlog-tiles log, for
 * other TypeScript programs, and the signer for writers. The same client without the server's
 * dependencies is the `tlog-worm-client` package (built by src/client/package/build.ts).
 *
 *   import { fetchCheckpoint, proveInclusion, Monitor, urlSource } from 'tlog-worm';  // or 'tlog-worm/client'
 *   import { signHttpRequest } from 'tlog-worm';                                       // or 'tlog-worm/signed-request'
 *
 * The log engine and the server are not exported here; they are run through the `tlog` CLI.
 * signHttpRequest() signs writes for a service that registers the caller's client key.
 */

export * from './client/index.js';

// Writing to a tlog-worm service with a client key: RFC 9421 signed requests.
export { signHttpRequest, contentDigest, signatureTag, type HttpRequestToSign } from './client/signed-request.js';
