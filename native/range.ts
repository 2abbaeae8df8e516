/** Bounds and integer checks shared by both MappedFile backends. */

export function checkSize(size: number): void {
  if (!Number.isSafeInteger(size) || size < 0) throw new RangeError(`bad file size ${size}`);
}

/** Throws RangeError unless [offset, offset+length) lies inside [0, size). */
export function checkRange(offset: number, length: number, size: number): void {
  if (!(Number.isSafeInteger(offset) && Number.isSafeInteger(length) && offset >= 0 && length >= 0 && offset + length <= size)) {
    throw new RangeError(`range [${offset}, +${length}) outside file of ${size} bytes`);
  }
}

/** Throws unless value fits a u64 field as a JS number (0..2^53-1). */
export function checkU64(value: number): void {
  if (!Number.isSafeInteger(value) || value < 0) throw new RangeError(`u64 value ${value} not a safe non-negative integer`);
}

export function checkU32(value: number): void {
  if (!Number.isInteger(value) || value < 0 || value > 0xffff_ffff) throw new RangeError(`u32 value ${value} out of range`);
}

export function combineU64(lo: number, hi: number): number {
  if (hi > 0x1f_ffff) throw new RangeError('u64 value above 2^53-1');
  return hi * 0x1_0000_0000 + lo;
}
