/**
 * What a PyTorch checkpoint's pickle may name, and what it builds: the allow-list of
 * globals (containers, the tensor rebuild functions, storage types, dtypes), the storages
 * its persistent ids stand for, and the tensors `_rebuild_tensor_v2` makes of them. The
 * list follows what `torch.save` writes for tensors, parameters and state dicts; anything
 * else is refused by the pickle reader with its name.
 */
import type { DType } from '../../../shared/dtypes';
import { MAX_TENSOR_ELEMENTS, MAX_TENSOR_RANK } from '../../../shared/limits';
import { describePy, PickleError, type PyGlobal, type PyValue } from './pickle';

/** A storage a persistent id names: its key in the archive, element type and size. */
export interface TorchStorage {
  readonly type: 'storage';
  /** `data/<key>` in a zip checkpoint; the key in a legacy file's storage list. */
  readonly key: string;
  readonly dtype: DType;
  /** The storage type's name (`FloatStorage`), for messages. */
  readonly typeName: string;
  /** Elements the storage holds. */
  readonly numel: number;
  /** Legacy views of a larger storage: elements into the root storage. */
  readonly viewOffset: number;
}

/** A tensor as `_rebuild_tensor_v2` describes it: a strided view of a storage. */
export interface TorchTensor {
  readonly type: 'tensor';
  readonly storage: TorchStorage;
  /** Elements from the storage's start. */
  readonly offset: number;
  readonly shape: readonly number[];
  readonly stride: readonly number[];
}

/** torch storage type names and their element types. */
export const STORAGE_DTYPES: Readonly<Record<string, DType>> = {
  FloatStorage: 'float32',
  DoubleStorage: 'float64',
  HalfStorage: 'float16',
  BFloat16Storage: 'bfloat16',
  ByteStorage: 'uint8',
  CharStorage: 'int8',
  ShortStorage: 'int16',
  IntStorage: 'int32',
  LongStorage: 'int64',
  BoolStorage: 'bool',
  ComplexFloatStorage: 'complex64',
  ComplexDoubleStorage: 'complex128',
  Float8_e4m3fnStorage: 'float8_e4m3fn',
  Float8_e5m2Storage: 'float8_e5m2',
  Float8_e4m3fnuzStorage: 'float8_e4m3fnuz',
  Float8_e5m2fnuzStorage: 'float8_e5m2fnuz',
  UInt16Storage: 'uint16',
  UInt32Storage: 'uint32',
  UInt64Storage: 'uint64',
  UntypedStorage: 'uint8',
};

/** torch dtype objects (`torch.float32`, with their aliases) as the pickle names them. */
const DTYPE_NAMES: Readonly<Record<string, DType>> = {
  float32: 'float32',
  float: 'float32',
  float64: 'float64',
  double: 'float64',
  float16: 'float16',
  half: 'float16',
  bfloat16: 'bfloat16',
  uint8: 'uint8',
  int8: 'int8',
  int16: 'int16',
  short: 'int16',
  int32: 'int32',
  int: 'int32',
  int64: 'int64',
  long: 'int64',
  bool: 'bool',
  complex64: 'complex64',
  cfloat: 'complex64',
  complex128: 'complex128',
  cdouble: 'complex128',
  float8_e4m3fn: 'float8_e4m3fn',
  float8_e5m2: 'float8_e5m2',
  float8_e4m3fnuz: 'float8_e4m3fnuz',
  float8_e5m2fnuz: 'float8_e5m2fnuz',
  uint16: 'uint16',
  uint32: 'uint32',
  uint64: 'uint64',
};

const external = (value: TorchStorage | TorchTensor): PyValue => ({ kind: 'external', value });

export function tensorOf(value: PyValue): TorchTensor | undefined {
  if (typeof value !== 'object' || value === null || value instanceof Uint8Array) return undefined;
  if (value.kind !== 'external') return undefined;
  const inner = value.value as TorchStorage | TorchTensor;
  return inner.type === 'tensor' ? inner : undefined;
}

function storageOf(value: PyValue): TorchStorage {
  if (typeof value === 'object' && value !== null && !(value instanceof Uint8Array)) {
    if (value.kind === 'external' && (value.value as TorchStorage).type === 'storage') {
      return value.value as TorchStorage;
    }
  }
  throw new PickleError(`a tensor is rebuilt from ${describePy(value)} instead of a storage`);
}

/** A non-negative safe integer, or the problem named after `what`. */
function count(value: PyValue, what: string): number {
  if (typeof value === 'number' && Number.isSafeInteger(value) && value >= 0) return value;
  throw new PickleError(
    `${what} is ${typeof value === 'bigint' ? value.toString() : describePy(value)}, not a non-negative integer`,
  );
}

function intTuple(value: PyValue, what: string): number[] {
  if (typeof value !== 'object' || value === null || value instanceof Uint8Array) {
    throw new PickleError(`${what} is ${describePy(value)}, not a tuple`);
  }
  if (value.kind !== 'tuple' && value.kind !== 'list') {
    throw new PickleError(`${what} is ${describePy(value)}, not a tuple`);
  }
  if (value.items.length > MAX_TENSOR_RANK) {
    throw new PickleError(
      `${what} has ${value.items.length} dimensions, more than the limit of ${MAX_TENSOR_RANK}`,
    );
  }
  return value.items.map((item, i) => count(item, `${what}[${i}]`));
}

/** `_rebuild_tensor_v2(storage, storage_offset, size, stride, requires_grad, hooks[, metadata])`. */
function rebuildTensor(args: readonly PyValue[]): PyValue {
  if (args.length < 4)
    throw new PickleError(`_rebuild_tensor has ${args.length} arguments, fewer than 4`);
  const storage = storageOf(args[0]!);
  const offset = storage.viewOffset + count(args[1]!, "a tensor's storage offset");
  const shape = intTuple(args[2]!, "a tensor's size");
  const stride = intTuple(args[3]!, "a tensor's stride");
  if (stride.length !== shape.length) {
    throw new PickleError(
      `a tensor's size has ${shape.length} dimensions and its stride ${stride.length}`,
    );
  }
  let elements = 1;
  let reach = 0;
  for (let i = 0; i < shape.length; i++) {
    elements *= shape[i]!;
    if (elements > MAX_TENSOR_ELEMENTS)
      throw new PickleError(`a tensor of size (${shape.join(', ')}) has too many elements`);
    reach += (shape[i]! - 1) * stride[i]!;
  }
  if (elements > 0 && offset + reach + 1 > storage.numel) {
    throw new PickleError(
      `a tensor of size (${shape.join(', ')}), stride (${stride.join(', ')}) at offset ${offset} reaches element ${offset + reach}, past the end of storage ${storage.key} (${storage.numel} elements)`,
    );
  }
  return external({ type: 'tensor', storage, offset, shape, stride });
}

/** `_rebuild_parameter(data, requires_grad, hooks)` and its `_with_state` variant: the data. */
function rebuildParameter(args: readonly PyValue[]): PyValue {
  const data = args[0];
  if (data === undefined || !tensorOf(data)) {
    throw new PickleError(
      `a parameter is rebuilt from ${data === undefined ? 'nothing' : describePy(data)} instead of a tensor`,
    );
  }
  return data;
}

/** `torch._tensor._rebuild_from_type_v2(func, type, args, state)`: func(*args). */
function rebuildFromType(args: readonly PyValue[]): PyValue {
  const [func, , inner] = args;
  if (
    typeof func !== 'object' ||
    func === null ||
    func instanceof Uint8Array ||
    func.kind !== 'global' ||
    !func.call
  ) {
    throw new PickleError('_rebuild_from_type_v2 names no allowed function');
  }
  if (
    typeof inner !== 'object' ||
    inner === null ||
    inner instanceof Uint8Array ||
    inner.kind !== 'tuple'
  ) {
    throw new PickleError('_rebuild_from_type_v2 has no argument tuple');
  }
  return func.call(inner.items);
}

/** `_codecs.encode(text, 'latin1')`: how protocol 2 writes Python bytes. */
function encodeBytes(args: readonly PyValue[]): PyValue {
  const [text, encoding] = args;
  if (typeof text !== 'string')
    throw new PickleError('_codecs.encode of a value that is not a string');
  if (encoding !== 'latin1' && encoding !== 'latin-1') {
    throw new PickleError(`_codecs.encode with encoding ${String(encoding)}`);
  }
  const bytes = new Uint8Array(text.length);
  for (let i = 0; i < text.length; i++) bytes[i] = text.charCodeAt(i) & 0xff;
  return bytes;
}

const emptyDict = (args: readonly PyValue[]): PyValue => {
  if (args.length > 0) throw new PickleError('OrderedDict is built with arguments');
  return { kind: 'dict', entries: new Map() };
};
const asList = (args: readonly PyValue[]): PyValue => {
  const [items] = args;
  if (items === undefined) return { kind: 'list', items: [] };
  if (
    typeof items === 'object' &&
    items !== null &&
    !(items instanceof Uint8Array) &&
    (items.kind === 'list' || items.kind === 'tuple')
  ) {
    return { kind: 'list', items: [...items.items] };
  }
  throw new PickleError(`a set is built from ${describePy(items)}`);
};
const asTuple = (args: readonly PyValue[]): PyValue => {
  const [items] = args;
  if (
    typeof items === 'object' &&
    items !== null &&
    !(items instanceof Uint8Array) &&
    (items.kind === 'list' || items.kind === 'tuple')
  ) {
    return { kind: 'tuple', items: [...items.items] };
  }
  throw new PickleError(`torch.Size is built from ${describePy(items)}`);
};
const deviceName = (args: readonly PyValue[]): PyValue => args.map(String).join(':');

/** The allowed functions, by `module.name`. */
const FUNCTIONS: Readonly<Record<string, (args: readonly PyValue[]) => PyValue>> = {
  'collections.OrderedDict': emptyDict,
  'torch._utils._rebuild_tensor_v2': rebuildTensor,
  'torch._utils._rebuild_tensor': rebuildTensor,
  'torch._utils._rebuild_parameter': rebuildParameter,
  'torch._utils._rebuild_parameter_with_state': rebuildParameter,
  'torch._tensor._rebuild_from_type_v2': rebuildFromType,
  'torch.Size': asTuple,
  'torch.device': deviceName,
  'builtins.set': asList,
  'builtins.frozenset': asList,
  '__builtin__.set': asList,
  '_codecs.encode': encodeBytes,
};

/** Names that stand for themselves: tensor classes passed to `_rebuild_from_type_v2`. */
const MARKERS = new Set(['torch.nn.parameter.Parameter', 'torch.Tensor', 'torch._tensor.Tensor']);

/** Every global the reader accepts, for the README and messages. */
export function allowedGlobals(): string[] {
  return [
    ...Object.keys(FUNCTIONS),
    ...MARKERS,
    ...Object.keys(STORAGE_DTYPES).map((name) => `torch.${name}`),
    ...Object.keys(DTYPE_NAMES).map((name) => `torch.${name}`),
  ];
}

/** The allow-list: the global `module.name`, or undefined (refused). */
export function resolveTorchGlobal(module: string, name: string): PyGlobal | undefined {
  const qualified = `${module}.${name}`;
  const call = Object.hasOwn(FUNCTIONS, qualified) ? FUNCTIONS[qualified] : undefined;
  if (call) return { kind: 'global', module, name, call };
  if (MARKERS.has(qualified)) return { kind: 'global', module, name };
  if (
    module === 'torch' &&
    (Object.hasOwn(STORAGE_DTYPES, name) || Object.hasOwn(DTYPE_NAMES, name))
  ) {
    return { kind: 'global', module, name };
  }
  return undefined;
}

/**
 * The storage a persistent id names: `('storage', <type>, key, location, numel)` in a zip
 * checkpoint, with a sixth item (None, or a view `(root_key, offset, size)`) in a legacy
 * file: a view becomes its root storage with the view's offset (views date from torch < 1.0).
 */
export function storageFromPid(pid: PyValue): PyValue {
  if (
    typeof pid !== 'object' ||
    pid === null ||
    pid instanceof Uint8Array ||
    pid.kind !== 'tuple'
  ) {
    throw new PickleError(`a persistent id is ${describePy(pid)}, not a tuple`);
  }
  const [tag, type, key, , size, view] = pid.items;
  if (tag !== 'storage')
    throw new PickleError(`a persistent id of kind ${String(tag)}, not 'storage'`);
  if (
    typeof type !== 'object' ||
    type === null ||
    type instanceof Uint8Array ||
    type.kind !== 'global' ||
    !Object.hasOwn(STORAGE_DTYPES, type.name)
  ) {
    throw new PickleError(`a storage of type ${type === undefined ? 'nothing' : describePy(type)}`);
  }
  if (typeof key !== 'string' || !/^[A-Za-z0-9_]{1,64}$/.test(key)) {
    throw new PickleError(`a storage key ${JSON.stringify(String(key))} that is not a plain name`);
  }
  const numel = count(size ?? null, `storage ${key}'s size`);
  let viewOffset = 0;
  if (view !== undefined && view !== null) {
    if (
      typeof view !== 'object' ||
      view instanceof Uint8Array ||
      view.kind !== 'tuple' ||
      view.items.length !== 3
    ) {
      throw new PickleError(`storage ${key}'s view is ${describePy(view)}`);
    }
    const [rootKey, offset, viewSize] = view.items;
    if (typeof rootKey !== 'string' || !/^[A-Za-z0-9_]{1,64}$/.test(rootKey)) {
      throw new PickleError(`storage ${key} is a view of a storage with no plain key`);
    }
    viewOffset = count(offset!, `storage ${key}'s view offset`);
    const storage: TorchStorage = {
      type: 'storage',
      key: rootKey,
      dtype: STORAGE_DTYPES[type.name]!,
      typeName: type.name,
      numel: viewOffset + count(viewSize!, `storage ${key}'s view size`),
      viewOffset,
    };
    return external(storage);
  }
  return external({
    type: 'storage',
    key,
    dtype: STORAGE_DTYPES[type.name]!,
    typeName: type.name,
    numel,
    viewOffset,
  });
}
