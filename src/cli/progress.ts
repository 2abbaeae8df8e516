/** A one-line progress bar on stderr, drawn only when stderr is a terminal. */
export function progressBar(label: string, stream: NodeJS.WriteStream = process.stderr): (done: number, total: number) => void {
  if (!stream.isTTY) return () => {};
  let last = 0;
  return (done, total) => {
    const now = Date.now();
    if (done < total && now - last < 100) return;
    last = now;
    const width = 30;
    const frac = total === 0 ? 1 : done / total;
    const bar = '#'.repeat(Math.round(frac * width)).padEnd(width, '.');
    stream.write(`\r${label} [${bar}] ${(frac * 100).toFixed(1)}% ${done}/${total}`);
    if (done >= total) stream.write('\n');
  };
}

/**
 * A running count on stderr for work of unknown size (a stream), drawn only on a terminal, at
 * most ten times a second; done() draws the last count and ends the line.
 */
export function progressCounter(label: string, stream: NodeJS.WriteStream = process.stderr): { update(text: string): void; done(): void } {
  if (!stream.isTTY) return { update() {}, done() {} };
  let last = 0;
  let latest: string | null = null;
  const draw = (text: string) => stream.write(`\r${label} ${text}\x1b[K`);
  return {
    update(text) {
      latest = text;
      const now = Date.now();
      if (now - last < 100) return;
      last = now;
      draw(text);
    },
    done() {
      if (latest === null) return;
      draw(latest);
      stream.write('\n');
      latest = null;
    },
  };
}
