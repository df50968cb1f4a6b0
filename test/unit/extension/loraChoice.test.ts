/** The rank-or-energy box of Extract LoRA…: what each typed text means. */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { parseLoraChoice } from '../../../src/extension/loraChoice';

test('a whole number is a rank, a fraction or a percentage an energy share, the rest a message', () => {
  assert.deepEqual(parseLoraChoice('16'), { rank: 16 });
  assert.deepEqual(parseLoraChoice(' 1 '), { rank: 1 });
  assert.deepEqual(parseLoraChoice('0.9'), { energy: 0.9 });
  assert.deepEqual(parseLoraChoice('99.5%'), { energy: 0.995 });
  assert.deepEqual(parseLoraChoice('100%'), { energy: 1 });
  assert.match(parseLoraChoice('0') as string, /whole number from 1/);
  assert.match(parseLoraChoice('2.5') as string, /whole number from 1/);
  assert.match(parseLoraChoice('150%') as string, /at most 100%/);
  assert.match(parseLoraChoice('') as string, /type a rank/);
  assert.match(parseLoraChoice('abc') as string, /type a rank/);
});
