/** Types of prng.mjs (plain JavaScript so child processes without a loader can use it). */
export declare function prng(seed: number): () => number;
export declare function randInt(rand: () => number, lo: number, hi: number): number;
export declare function randBytes(rand: () => number, n: number): Uint8Array;
