/**
 * native/: the only code in the project that touches raw memory or calls libc directly.
 * Everything above it uses these functions and never imports koffi.
 */
export { errnoName, LOCK_HELD, NativeError } from './errors.js';
export { bootId, nativeUnavailableReason } from './libc.js';
export { lockFileExclusive, type FileLock, type LockKind, type LockOptions } from './lock.js';
export {
  allocateFile,
  MAX_CHUNK_SIZE,
  openMappedFile,
  type Advice,
  type MappedFile,
  type MappedFileBackend,
  type OpenMappedFileOptions,
} from './mapped-file.js';
export { fdatasync, fsync, fsyncDirectory, fsyncDirectoryAsync } from './sync.js';

import { libc } from './libc.js';
/** True when koffi loaded: mmap-backed files and OFD locks are the defaults. */
export const nativeAvailable: boolean = libc !== undefined;
/** The system page size (4096 when koffi is unavailable). */
export const pageSize: number = libc?.pageSize ?? 4096;
