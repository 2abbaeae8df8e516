/**
 * isInside at every placement of a directory relative to a served one: the same, below it,
 * beside it, a name that merely starts with ".." (inside), above it, and through symlinks
 * (existing, dangling, and under a not-yet-existing path).
 */
import { mkdirSync, symlinkSync } from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { isInside, realPathOf } from '../../src/storage/containment.js';
import { makeTempDir, removeDir } from '../helpers/temp-dirs.js';

let dir: string;
let tiles: string;

beforeAll(() => {
  dir = makeTempDir('tlog-contain-');
  tiles = path.join(dir, 'tiles');
  mkdirSync(path.join(tiles, 'default'), { recursive: true });
  mkdirSync(path.join(dir, 'elsewhere'));
  symlinkSync(path.join(tiles, 'default'), path.join(dir, 'link-into-tiles'));
  symlinkSync('tiles', path.join(dir, 'relative-link-to-tiles'));
  symlinkSync(path.join(tiles, '..hidden'), path.join(dir, 'dangling-into-tiles'));
  symlinkSync(path.join(dir, 'elsewhere'), path.join(dir, 'link-elsewhere'));
  symlinkSync(path.join(dir, 'loop-b'), path.join(dir, 'loop-a'));
  symlinkSync(path.join(dir, 'loop-a'), path.join(dir, 'loop-b'));
  symlinkSync(dir, path.join(tiles, 'up'));
});
afterAll(() => removeDir(dir));

describe('isInside(parent, child)', () => {
  const cases: [string, () => string, boolean][] = [
    ['the same directory', () => tiles, true],
    ['the same directory, spelled with a trailing slash and a dot', () => `${tiles}/./`, true],
    ['a child', () => path.join(tiles, 'default'), true],
    ['a not-yet-existing grandchild', () => path.join(tiles, 'new', 'state'), true],
    ['a child named "..state"', () => path.join(tiles, '..state'), true],
    ['a child named ".."-something, not yet existing, deeper', () => path.join(tiles, '..x', 'y'), true],
    ['a child named "..."', () => path.join(tiles, '...'), true],
    ['a lexical ".." that comes back in', () => path.join(tiles, 'default', '..', '..state'), true],
    ['a sibling', () => path.join(dir, 'state'), false],
    ["a sibling whose name starts with the parent's", () => path.join(dir, 'tiles-state'), false],
    ['a sibling named "..tiles"', () => path.join(dir, '..tiles'), false],
    ["the parent's parent", () => dir, false],
    ['the file system root', () => '/', false],
    ['a symlink into the parent', () => path.join(dir, 'link-into-tiles'), true],
    ['a not-yet-existing path under a symlink into the parent', () => path.join(dir, 'link-into-tiles', 'state', 'x'), true],
    ['a relative symlink to the parent', () => path.join(dir, 'relative-link-to-tiles'), true],
    ['a dangling symlink whose target is inside the parent', () => path.join(dir, 'dangling-into-tiles', 'state'), true],
    ['a symlink elsewhere', () => path.join(dir, 'link-elsewhere', 'state'), false],
    ['a path through a symlink inside the parent that leads out', () => path.join(tiles, 'up', 'state'), false],
  ];
  it.each(cases)('%s: %s', (_name, child, want) => {
    expect(isInside(tiles, child())).toBe(want);
  });

  it('resolves symlinks of the parent too', () => {
    expect(isInside(path.join(dir, 'relative-link-to-tiles'), path.join(tiles, '..state'))).toBe(true);
    expect(isInside(path.join(dir, 'link-elsewhere'), path.join(tiles, 'default'))).toBe(false);
  });

  it('a loop of symlinks is an error, not a hang', () => {
    expect(() => realPathOf(path.join(dir, 'loop-a', 'x'))).toThrow(/too many levels of symbolic links/);
  });
});
