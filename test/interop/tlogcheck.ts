/**
 * The golang.org/x/mod checker in test/interop/go/tlogcheck: building it once per test file and
 * running it. A missing `go` fails loudly: CI installs Go, so these tests must not skip.
 */
import path from 'node:path';
import { buildGoTool, goBinDir, runJsonTool, type JsonRun } from '../helpers/go-tools.js';

const moduleDir = path.join(import.meta.dirname, 'go', 'tlogcheck');
export const checker = path.join(goBinDir, 'tlogcheck');

export function buildChecker(): void {
  buildGoTool(moduleDir, './...', 'tlogcheck');
}

/** The checker's flags that expect the content types a tlog-tiles log serves (checkpoint as text, tiles and bundles as bytes). */
export const WANT_CONTENT_TYPES = [
  '-want-content-type',
  'checkpoint=text/plain; charset=utf-8',
  '-want-content-type',
  'tile=application/octet-stream',
  '-want-content-type',
  'entries=application/octet-stream',
];

export interface Signature {
  name: string;
  keyID: string;
  bytes: number;
  verified: boolean;
}

export interface HeaderSet {
  requests: number;
  contentType: string[];
  cacheControl: string[];
  contentEncoding: string[];
}

/** The checker's one line of JSON. */
export interface Summary {
  ok: boolean;
  origin: string;
  treeSize: number;
  rootHash: string;
  extensions: string[];
  signatures: Signature[] | null;
  entries: number;
  bundles: number;
  tiles: number;
  partialFallbacks: number;
  recordProofs: number;
  inclusion: { index: number; proof: string[] }[];
  consistency: { location: string; oldSize: number; oldRoot: string; proof: string[] }[];
  layout?: { files: number; stalePartials: number };
  http?: Record<string, HeaderSet>;
  stage?: string;
  error?: string;
}

export type CheckResult = JsonRun<Summary>;

/** Runs the checker (asynchronously: a server in this process may have to answer it). */
export function runCheck(args: string[]): Promise<CheckResult> {
  return runJsonTool<Summary>(checker, args);
}
