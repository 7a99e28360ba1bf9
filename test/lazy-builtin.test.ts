/**
 * The wrappers the bundle puts in place of node's heavier modules (scripts/lazy-builtin.mjs): they load the real
 * module on first use, and behave as it does.
 */
import { AssertionError } from 'node:assert';
import { createRequire } from 'node:module';
import { describe, expect, it } from 'vitest';
// @ts-expect-error: a build script, plain JavaScript without declarations
import { HEAVY_BUILTIN, lazyBuiltin } from '../scripts/lazy-builtin.mjs';

const nodeRequire = createRequire(import.meta.url);

/** Evaluates the wrapper for `id` as the bundle does (a CommonJS module), counting the requires it makes. */
// biome-ignore lint/suspicious/noExplicitAny: a wrapped module's exports, called as the real module's would be
type Exports = any;

function wrapper(id: string): { exports: Exports; loads: () => number } {
  let loads = 0;
  const req = (m: string) => {
    loads++;
    return nodeRequire(m);
  };
  const module = { exports: {} as unknown };
  new Function('require', 'module', 'exports', (lazyBuiltin as (id: string) => string)(id))(
    req,
    module,
    module.exports,
  );
  return { exports: module.exports, loads: () => loads };
}

describe('lazy builtins', () => {
  it('assert: a passing check loads nothing, a failing one throws what node:assert throws', () => {
    for (const id of ['assert', 'node:assert', 'node:assert/strict']) {
      expect(HEAVY_BUILTIN.test(id)).toBe(true);
      const w = wrapper(id);
      const assert = w.exports as (v?: unknown, m?: string | Error) => void;
      expect(assert(true, 'never')).toBeUndefined();
      expect(assert(1)).toBeUndefined();
      expect(assert('x', 'never')).toBeUndefined();
      expect(w.loads()).toBe(0);
      expect(() => assert(false, 'The path could not be empty')).toThrow(
        expect.objectContaining({ name: 'AssertionError', message: 'The path could not be empty' }),
      );
      expect(() => assert(0)).toThrow(AssertionError);
      expect(() => assert()).toThrow(/No value argument passed/);
      const custom = new TypeError('mine');
      expect(() => assert(null, custom)).toThrow(custom);
      expect(w.loads()).toBe(1);
    }
  });

  it("assert's methods are node's own", () => {
    const w = wrapper('node:assert');
    expect(() => w.exports.strictEqual(1, 1)).not.toThrow();
    expect(() => w.exports.strictEqual(1, 2)).toThrow(AssertionError);
    expect(w.exports.AssertionError).toBe(AssertionError);
  });

  it('an object wrapper loads its module at the first export read', () => {
    const w = wrapper('node:crypto');
    expect(w.loads()).toBe(0);
    expect(w.exports.createHash('sha256').update('x').digest('hex')).toBe(
      '2d711642b726b04401627ca9fbac32f5c8530fb1903cc4db02258717921a4881',
    );
    expect(w.loads()).toBe(1);
  });
});
