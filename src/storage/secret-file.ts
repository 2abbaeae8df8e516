/**
 * Secret files (private keys): created 0600 with O_EXCL so an existing one is never replaced,
 * synced with their directory entry, and refused on read when group or others may read them.
 * Their contents never appear in errors or logs.
 */
import { promises as fsp, constants as fsc } from 'node:fs';
import path from 'node:path';
import { TlogError, ErrorCode, ioError } from '../errors.js';
import { syncDir } from './durable.js';

/** Creates the 0700 directory that holds secret files. */
export async function ensureSecretDir(dir: string): Promise<void> {
  await fsp.mkdir(dir, { recursive: true, mode: 0o700 });
  await fsp.chmod(dir, 0o700);
}

/** Creates `p` with `text`, mode 0600; fails if it exists. Durable on return. */
export async function createSecretFile(p: string, text: string): Promise<void> {
  let fh: fsp.FileHandle | undefined;
  try {
    fh = await fsp.open(p, fsc.O_WRONLY | fsc.O_CREAT | fsc.O_EXCL, 0o600);
    await fh.writeFile(text);
    // A key lost in a crash after something was signed with it would orphan those signatures.
    await fh.sync();
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'EEXIST') {
      throw new TlogError(ErrorCode.conflict, `key file ${p} already exists: refusing to overwrite a key`);
    }
    throw ioError('create key', p, e);
  } finally {
    await fh?.close();
  }
  // The new directory entry is durable only once the directory is synced.
  await syncDir(path.dirname(p));
}

/** Reads a secret file, refusing one that group or others can read; not_found when absent. */
export async function readSecretFile(p: string): Promise<string> {
  try {
    const st = await fsp.stat(p);
    if ((st.mode & 0o077) !== 0) {
      throw new TlogError(ErrorCode.corrupt, `key file ${p} is readable by others (mode ${(st.mode & 0o777).toString(8)}): chmod 600 it`);
    }
    return await fsp.readFile(p, 'utf8');
  } catch (e) {
    if (e instanceof TlogError) throw e;
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') throw new TlogError(ErrorCode.notFound, `no key file at ${p}`, { cause: e });
    throw ioError('read key', p, e);
  }
}
