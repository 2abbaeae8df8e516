/** Types of crash-entries.mjs (plain JavaScript so the child driver runs without a loader). */
export declare const MAX_CRASH_ENTRY: number;
export declare function entryId(cycle: number, seq: number): string;
export declare function parseEntryId(id: string): { cycle: number; seq: number };
export declare function entryBytes(cycle: number, seq: number): Uint8Array;
