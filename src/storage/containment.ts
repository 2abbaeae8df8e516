/**
 * Whether one directory lies inside another on the real file system. The private state root
 * must never be reachable through a served root: a lexical check is not enough, because
 * `tiles/..state` is inside `tiles/` although its relative path starts with "..", and a
 * symlink can point anywhere. Both paths are resolved through the symlinks of their existing
 * part first (the directories may not exist yet: a log is created under them afterwards).
 */
import fs from 'node:fs';
import path from 'node:path';
import { TlogError, ErrorCode } from '../errors.js';

/** Symlinks followed before giving up, as the kernel's MAXSYMLINKS (Linux: 40). */
const MAX_LINKS = 40;

function tooManyLinks(p: string): TlogError {
  return new TlogError(ErrorCode.badInput, `too many levels of symbolic links in ${p}`);
}

/**
 * The absolute path `p` names once every symlink in it is followed: its deepest existing
 * ancestor through realpath, a dangling symlink through its target, the missing rest as is.
 */
export function realPathOf(p: string): string {
  let at = path.resolve(p);
  const missing: string[] = [];
  for (let links = 0; ; ) {
    try {
      return path.join(fs.realpathSync.native(at), ...missing);
    } catch (e) {
      const code = (e as NodeJS.ErrnoException).code;
      if (code === 'ELOOP') throw tooManyLinks(p);
      if (code !== 'ENOENT' && code !== 'ENOTDIR') throw e;
    }
    let link: string | undefined;
    try {
      if (fs.lstatSync(at).isSymbolicLink()) link = fs.readlinkSync(at);
    } catch {
      // `at` itself does not exist: go up a level.
    }
    if (link !== undefined) {
      // A dangling symlink: mkdir through it would create its target.
      if (++links > MAX_LINKS) throw tooManyLinks(p);
      at = path.resolve(path.dirname(at), link);
      continue;
    }
    const parent = path.dirname(at);
    if (parent === at) return path.join(at, ...missing);
    missing.unshift(path.basename(at));
    at = parent;
  }
}

/** True when `child` is `parent` itself or lies anywhere below it, symlinks followed. */
export function isInside(parent: string, child: string): boolean {
  const rel = path.relative(realPathOf(parent), realPathOf(child));
  if (rel === '') return true;
  // Outside only when the way up starts with the whole segment "..": "..state" is a child.
  return !(rel === '..' || rel.startsWith(`..${path.sep}`) || path.isAbsolute(rel));
}
