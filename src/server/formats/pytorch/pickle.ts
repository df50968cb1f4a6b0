/**
 * A restricted pickle reader: it interprets the opcodes of pickle protocols 2–5 that
 * PyTorch checkpoints use into a tree of plain values, and never runs code. A GLOBAL (or
 * STACK_GLOBAL) is resolved only through the caller's allow-list (`resolveGlobal`); any
 * other name is refused with that name. Calling (REDUCE, NEWOBJ) is possible only on an
 * allowed global that provides `call`, a pure function of the decoded arguments.
 * Persistent ids (BINPERSID) go to the caller's `persistentLoad`.
 *
 * The text opcodes of protocol 0/1 and the ones that instantiate arbitrary classes (INST,
 * OBJ, EXT*) or read out-of-band buffers are refused with their name.
 */
import {
  MAX_PICKLE_DEPTH,
  MAX_PICKLE_LONG_BYTES,
  MAX_PICKLE_MEMO,
  MAX_PICKLE_STRING_BYTES,
} from '../../../shared/limits';
import { ModelFileError } from '../modelFileError';

export interface PyList {
  readonly kind: 'list';
  readonly items: PyValue[];
}
export interface PyTuple {
  readonly kind: 'tuple';
  readonly items: readonly PyValue[];
}
/** Dict keys as JavaScript primitives (tuples and other keys as their printed form). */
export type PyKey = string | number | bigint | boolean | null;
export interface PyDict {
  readonly kind: 'dict';
  readonly entries: Map<PyKey, PyValue>;
}
/** An allowed global: a marker value (a dtype, a storage type) or a pure function. */
export interface PyGlobal {
  readonly kind: 'global';
  readonly module: string;
  readonly name: string;
  readonly call?: (args: readonly PyValue[]) => PyValue;
}
/** Values the caller's hooks build (storages, tensors…), carried through as they are. */
export interface PyExternal {
  readonly kind: 'external';
  readonly value: unknown;
}
export type PyValue =
  | null
  | boolean
  | number
  | bigint
  | string
  | Uint8Array
  | PyList
  | PyTuple
  | PyDict
  | PyGlobal
  | PyExternal;

export interface UnpickleHooks {
  /** The file being read, for error messages. */
  readonly file: string;
  /** What the pickle is (`data.pkl`, `the legacy header`…), for error messages. */
  readonly what: string;
  /** The allowed global `module.name`, or undefined: the pickle is refused. */
  resolveGlobal(module: string, name: string): PyGlobal | undefined;
  /** The object a persistent id stands for (torch: a storage). */
  persistentLoad(pid: PyValue): PyValue;
}

/** A pickle that cannot be read safely; the reader turns it into a ModelFileError. */
export class PickleError extends Error {}

/** The bytes given end inside the pickle: a caller holding only part of the file may read more. */
class PickleEndedError extends PickleError {}

/** A ModelFileError for a pickle that runs past the bytes given. */
export class PickleTruncatedError extends ModelFileError {}

const MARK = Symbol('mark');
type StackItem = PyValue | typeof MARK;

/** Opcode names of the refused opcodes, for the message. */
const REFUSED_OPCODES: Readonly<Record<number, string>> = {
  0x69: 'INST',
  0x6f: 'OBJ',
  0x82: 'EXT1',
  0x83: 'EXT2',
  0x84: 'EXT4',
  0x97: 'NEXT_BUFFER',
  0x98: 'READONLY_BUFFER',
  0x49: 'INT (protocol 0)',
  0x4c: 'LONG (protocol 0)',
  0x46: 'FLOAT (protocol 0)',
  0x53: 'STRING (protocol 0)',
  0x56: 'UNICODE (protocol 0)',
  0x70: 'PUT (protocol 0)',
  0x67: 'GET (protocol 0)',
  0x50: 'PERSID (protocol 0)',
};

/** The printed form of a value used as a dict key. */
export function keyOf(value: PyValue): PyKey {
  if (value === null || typeof value !== 'object') return value;
  if (value instanceof Uint8Array) return `b'${new TextDecoder('latin1').decode(value)}'`;
  if (value.kind === 'tuple')
    return `(${value.items.map((item) => String(keyOf(item))).join(', ')})`;
  if (value.kind === 'global') return `${value.module}.${value.name}`;
  throw new PickleError(`a ${value.kind} is used as a dict key`);
}

export function describePy(value: PyValue): string {
  if (value === null) return 'None';
  if (typeof value !== 'object') return typeof value;
  if (value instanceof Uint8Array) return 'bytes';
  if (value.kind === 'global') return `${value.module}.${value.name}`;
  return value.kind;
}

/**
 * Read one pickle from `bytes` starting at `start`; returns the value and the offset just
 * past its STOP opcode. Throws ModelFileError naming `hooks.file` for anything refused or
 * malformed.
 */
export function unpickle(
  bytes: Uint8Array,
  start: number,
  hooks: UnpickleHooks,
): { value: PyValue; end: number } {
  try {
    return run(bytes, start, hooks);
  } catch (error) {
    if (error instanceof PickleEndedError) {
      throw new PickleTruncatedError(hooks.file, `${hooks.what}: ${error.message}`);
    }
    if (error instanceof PickleError) {
      throw new ModelFileError(hooks.file, `${hooks.what}: ${error.message}`);
    }
    throw error;
  }
}

function run(
  bytes: Uint8Array,
  start: number,
  hooks: UnpickleHooks,
): { value: PyValue; end: number } {
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const stack: StackItem[] = [];
  /** Positions in `stack` of the open MARKs. */
  const marks: number[] = [];
  const memo = new Map<number, PyValue>();
  let at = start;

  const need = (count: number): void => {
    if (at + count > bytes.byteLength) {
      throw new PickleEndedError(
        `the pickle ends at byte ${bytes.byteLength}, inside an opcode (truncated?)`,
      );
    }
  };
  const u8 = (): number => {
    need(1);
    return bytes[at++]!;
  };
  const u16 = (): number => {
    need(2);
    const value = view.getUint16(at, true);
    at += 2;
    return value;
  };
  const u32 = (): number => {
    need(4);
    const value = view.getUint32(at, true);
    at += 4;
    return value;
  };
  const u64 = (): number => {
    need(8);
    const value = view.getBigUint64(at, true);
    at += 8;
    if (value > BigInt(Number.MAX_SAFE_INTEGER))
      throw new PickleError(`a length of ${value} bytes`);
    return Number(value);
  };
  const take = (length: number, what: string): Uint8Array => {
    if (length > MAX_PICKLE_STRING_BYTES) {
      throw new PickleError(
        `a ${what} of ${length} bytes, more than the limit of ${MAX_PICKLE_STRING_BYTES}`,
      );
    }
    need(length);
    const slice = bytes.subarray(at, at + length);
    at += length;
    return slice;
  };
  const text = (length: number): string =>
    new TextDecoder('utf-8', { fatal: false }).decode(take(length, 'string'));
  const latin1 = (length: number): string =>
    new TextDecoder('latin1').decode(take(length, 'string'));
  const line = (): string => {
    const end = bytes.indexOf(0x0a, at);
    if (end < 0 && bytes.byteLength - at <= 1024) {
      throw new PickleEndedError('the pickle ends inside a GLOBAL name (truncated?)');
    }
    if (end < 0 || end - at > 1024) throw new PickleError('a GLOBAL name is not terminated');
    const value = new TextDecoder('utf-8').decode(bytes.subarray(at, end));
    at = end + 1;
    return value;
  };
  const push = (value: PyValue): void => {
    if (stack.length >= MAX_PICKLE_MEMO) {
      throw new PickleError(`the stack holds more than ${MAX_PICKLE_MEMO} items`);
    }
    stack.push(value);
  };
  const pop = (): PyValue => {
    if (stack.length === 0 || (marks.length > 0 && stack.length <= marks.at(-1)! + 1)) {
      throw new PickleError('an opcode pops from an empty stack');
    }
    return stack.pop() as PyValue;
  };
  const top = (): PyValue => {
    const value = stack.at(-1);
    if (value === undefined || value === MARK)
      throw new PickleError('an opcode needs a value on the stack');
    return value;
  };
  const popMark = (): PyValue[] => {
    const mark = marks.pop();
    if (mark === undefined) throw new PickleError('an opcode needs a MARK that is not there');
    // stack[mark] is the MARK itself.
    return stack.splice(mark).slice(1) as PyValue[];
  };
  const put = (index: number): void => {
    if (!memo.has(index) && memo.size >= MAX_PICKLE_MEMO) {
      throw new PickleError(`the memo holds more than ${MAX_PICKLE_MEMO} entries`);
    }
    memo.set(index, top());
  };
  const get = (index: number): void => {
    if (!memo.has(index)) throw new PickleError(`memo entry ${index} is read before it is written`);
    push(memo.get(index)!);
  };
  const global = (module: string, name: string): void => {
    const resolved = hooks.resolveGlobal(module, name);
    if (!resolved) {
      throw new PickleError(
        `refuses global ${module}.${name}: LayerLens reads only tensors, containers and plain values from PyTorch files and never runs code from them`,
      );
    }
    push(resolved);
  };
  const call = (callable: PyValue, args: PyValue): PyValue => {
    if (
      typeof callable !== 'object' ||
      callable === null ||
      !('kind' in callable) ||
      callable.kind !== 'global' ||
      !callable.call
    ) {
      throw new PickleError(`${describePy(callable)} is called, but it is not an allowed function`);
    }
    if (typeof args !== 'object' || args === null || !('kind' in args) || args.kind !== 'tuple') {
      throw new PickleError(
        `${callable.module}.${callable.name} is called with ${describePy(args)} instead of a tuple`,
      );
    }
    return callable.call(args.items);
  };
  const dictOf = (value: PyValue, opcode: string): PyDict => {
    if (typeof value === 'object' && value !== null && 'kind' in value && value.kind === 'dict')
      return value;
    throw new PickleError(`${opcode} on ${describePy(value)}, not a dict`);
  };
  const listOf = (value: PyValue, opcode: string): PyList => {
    if (typeof value === 'object' && value !== null && 'kind' in value && value.kind === 'list')
      return value;
    throw new PickleError(`${opcode} on ${describePy(value)}, not a list`);
  };
  const long = (length: number): number | bigint => {
    if (length > MAX_PICKLE_LONG_BYTES) {
      throw new PickleError(
        `an integer of ${length} bytes, more than the limit of ${MAX_PICKLE_LONG_BYTES}`,
      );
    }
    const digits = take(length, 'integer');
    let value = 0n;
    for (let i = digits.length - 1; i >= 0; i--) value = (value << 8n) | BigInt(digits[i]!);
    if (length > 0 && digits[length - 1]! >= 0x80) value -= 1n << BigInt(8 * length);
    return value >= BigInt(Number.MIN_SAFE_INTEGER) && value <= BigInt(Number.MAX_SAFE_INTEGER)
      ? Number(value)
      : value;
  };

  for (;;) {
    const opcodeAt = at;
    const opcode = u8();
    switch (opcode) {
      case 0x80: // PROTO
        if (u8() > 5) throw new PickleError('pickle protocol above 5');
        break;
      case 0x95: // FRAME: a length prefix, no meaning for a reader holding every byte
        u64();
        break;
      case 0x2e: // STOP
        if (stack.length !== 1 || marks.length > 0) {
          throw new PickleError('STOP with a stack that does not hold exactly one value');
        }
        return { value: stack[0] as PyValue, end: at };
      case 0x28: // MARK
        if (marks.length >= MAX_PICKLE_DEPTH) {
          throw new PickleError(`MARKs nest deeper than the limit of ${MAX_PICKLE_DEPTH}`);
        }
        marks.push(stack.length);
        stack.push(MARK);
        break;
      case 0x30: // POP
        if (stack.at(-1) === MARK) popMark();
        else pop();
        break;
      case 0x31: // POP_MARK
        popMark();
        break;
      case 0x32: // DUP
        push(top());
        break;
      case 0x4e: // NONE
        push(null);
        break;
      case 0x88: // NEWTRUE
        push(true);
        break;
      case 0x89: // NEWFALSE
        push(false);
        break;
      case 0x4a: // BININT
        need(4);
        push(view.getInt32(at, true));
        at += 4;
        break;
      case 0x4b: // BININT1
        push(u8());
        break;
      case 0x4d: // BININT2
        push(u16());
        break;
      case 0x8a: // LONG1
        push(long(u8()));
        break;
      case 0x8b: // LONG4
        push(long(u32()));
        break;
      case 0x47: // BINFLOAT (big-endian)
        need(8);
        push(view.getFloat64(at, false));
        at += 8;
        break;
      case 0x58: // BINUNICODE
        push(text(u32()));
        break;
      case 0x8c: // SHORT_BINUNICODE
        push(text(u8()));
        break;
      case 0x8d: // BINUNICODE8
        push(text(u64()));
        break;
      case 0x55: // SHORT_BINSTRING (Python 2 str)
        push(latin1(u8()));
        break;
      case 0x54: // BINSTRING
        push(latin1(u32()));
        break;
      case 0x43: // SHORT_BINBYTES
        push(take(u8(), 'bytes object').slice());
        break;
      case 0x42: // BINBYTES
        push(take(u32(), 'bytes object').slice());
        break;
      case 0x8e: // BINBYTES8
      case 0x96: // BYTEARRAY8
        push(take(u64(), 'bytes object').slice());
        break;
      case 0x7d: // EMPTY_DICT
        push({ kind: 'dict', entries: new Map() });
        break;
      case 0x5d: // EMPTY_LIST
      case 0x8f: // EMPTY_SET (read as a list)
        push({ kind: 'list', items: [] });
        break;
      case 0x29: // EMPTY_TUPLE
        push({ kind: 'tuple', items: [] });
        break;
      case 0x85: // TUPLE1
      case 0x86: // TUPLE2
      case 0x87: {
        // TUPLE3
        const count = opcode - 0x84;
        const items: PyValue[] = [];
        for (let i = 0; i < count; i++) items.unshift(pop());
        push({ kind: 'tuple', items });
        break;
      }
      case 0x74: // TUPLE
        push({ kind: 'tuple', items: popMark() });
        break;
      case 0x91: // FROZENSET
      case 0x6c: // LIST
        push({ kind: 'list', items: popMark() });
        break;
      case 0x64: {
        // DICT
        const items = popMark();
        if (items.length % 2 !== 0) throw new PickleError('DICT with an odd number of items');
        const entries = new Map<PyKey, PyValue>();
        for (let i = 0; i < items.length; i += 2) entries.set(keyOf(items[i]!), items[i + 1]!);
        push({ kind: 'dict', entries });
        break;
      }
      case 0x61: {
        // APPEND
        const value = pop();
        listOf(top(), 'APPEND').items.push(value);
        break;
      }
      case 0x65: // APPENDS
      case 0x90: {
        // ADDITEMS
        const items = popMark();
        listOf(top(), opcode === 0x65 ? 'APPENDS' : 'ADDITEMS').items.push(...items);
        break;
      }
      case 0x73: {
        // SETITEM
        const value = pop();
        const key = pop();
        dictOf(top(), 'SETITEM').entries.set(keyOf(key), value);
        break;
      }
      case 0x75: {
        // SETITEMS
        const items = popMark();
        if (items.length % 2 !== 0) throw new PickleError('SETITEMS with an odd number of items');
        const dict = dictOf(top(), 'SETITEMS');
        for (let i = 0; i < items.length; i += 2) dict.entries.set(keyOf(items[i]!), items[i + 1]!);
        break;
      }
      case 0x71: // BINPUT
        put(u8());
        break;
      case 0x72: // LONG_BINPUT
        put(u32());
        break;
      case 0x94: // MEMOIZE
        put(memo.size);
        break;
      case 0x68: // BINGET
        get(u8());
        break;
      case 0x6a: // LONG_BINGET
        get(u32());
        break;
      case 0x63: {
        // GLOBAL
        const module = line();
        global(module, line());
        break;
      }
      case 0x93: {
        // STACK_GLOBAL
        const name = pop();
        const module = pop();
        if (typeof module !== 'string' || typeof name !== 'string') {
          throw new PickleError('STACK_GLOBAL with a module or name that is not a string');
        }
        global(module, name);
        break;
      }
      case 0x52: {
        // REDUCE
        const args = pop();
        push(call(pop(), args));
        break;
      }
      case 0x81: {
        // NEWOBJ: cls.__new__(cls, *args), allowed only where cls is an allowed function
        const args = pop();
        push(call(pop(), args));
        break;
      }
      case 0x92: {
        // NEWOBJ_EX
        const kwargs = pop();
        const args = pop();
        if (
          typeof kwargs !== 'object' ||
          kwargs === null ||
          !('kind' in kwargs) ||
          kwargs.kind !== 'dict' ||
          kwargs.entries.size > 0
        ) {
          throw new PickleError('NEWOBJ_EX with keyword arguments');
        }
        push(call(pop(), args));
        break;
      }
      case 0x62: // BUILD: the state of an object built by an allowed function; not needed
        pop();
        top();
        break;
      case 0x51: // BINPERSID
        push(hooks.persistentLoad(pop()));
        break;
      default: {
        const name = REFUSED_OPCODES[opcode];
        throw new PickleError(
          name
            ? `refuses opcode ${name} at byte ${opcodeAt}`
            : `unknown opcode 0x${opcode.toString(16).padStart(2, '0')} at byte ${opcodeAt} (not a pickle, or corrupt)`,
        );
      }
    }
  }
}
