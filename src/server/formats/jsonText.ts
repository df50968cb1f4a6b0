/**
 * JSON read from a file, with its nesting depth checked before it is parsed: a hostile file
 * of 100k nested brackets would otherwise overflow the stack of the recursive code that
 * later walks or prints the value.
 */
import { MAX_JSON_DEPTH } from '../../shared/limits';
import { ModelFileError } from './modelFileError';

const QUOTE = 0x22;
const BACKSLASH = 0x5c;
const OPEN_BRACKET = 0x5b;
const OPEN_BRACE = 0x7b;
const CLOSE_BRACKET = 0x5d;
const CLOSE_BRACE = 0x7d;

/** Deepest nesting of arrays and objects in `text` (brackets inside strings do not count). */
export function jsonNestingDepth(text: string): number {
  let depth = 0;
  let deepest = 0;
  let inString = false;
  for (let i = 0; i < text.length; i++) {
    const code = text.charCodeAt(i);
    if (inString) {
      if (code === BACKSLASH) i++;
      else if (code === QUOTE) inString = false;
    } else if (code === QUOTE) {
      inString = true;
    } else if (code === OPEN_BRACKET || code === OPEN_BRACE) {
      depth++;
      if (depth > deepest) deepest = depth;
    } else if (code === CLOSE_BRACKET || code === CLOSE_BRACE) {
      depth--;
    }
  }
  return deepest;
}

/**
 * Parse `text`, read from `file` (`what` names it in messages: "the header", "the index"),
 * or throw a ModelFileError: invalid JSON, or nesting deeper than MAX_JSON_DEPTH.
 */
export function parseFileJson(file: string, text: string, what: string): unknown {
  const depth = jsonNestingDepth(text);
  if (depth > MAX_JSON_DEPTH) {
    throw new ModelFileError(
      file,
      `${what} nests ${depth} levels deep, more than the limit of ${MAX_JSON_DEPTH}`,
    );
  }
  try {
    return JSON.parse(text) as unknown;
  } catch (error) {
    throw new ModelFileError(file, `${what} is not valid JSON (${(error as Error).message})`);
  }
}
