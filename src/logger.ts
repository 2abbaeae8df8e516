/**
 * The logger every layer writes to: the engine, the tile store, anchoring, the cosigner. The
 * service hands in pino (http/observe.ts); a library caller may hand in anything of this shape.
 */
export interface Logger {
  /** Things an operator looks at only when digging (optional: not every sink has it). */
  debug?(obj: object, msg?: string): void;
  info(obj: object, msg?: string): void;
  warn(obj: object, msg?: string): void;
  error(obj: object, msg?: string): void;
}

export const silentLogger: Logger = { info() {}, warn() {}, error() {} };
