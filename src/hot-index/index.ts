/**
 * The mmap hot index: commit point + dedup table (leafHash -> leafIndex) of one log.
 * Pure TypeScript over native/; imports nothing else from the project.
 */
export { IndexError, IndexErrorCode } from './errors.js';
export {
  HotIndex,
  initialCapacityFor,
  openIndex,
  type CommitPoint,
  type GrowthProgress,
  type IndexCheck,
  type IndexMode,
  type OpenIndexOptions,
} from './hot-index.js';
export { LAYOUT_VERSION } from './layout.js';
export { rebuild, type RebuildOptions, type RebuildResult } from './rebuild.js';
