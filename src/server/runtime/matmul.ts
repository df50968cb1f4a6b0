/**
 * Matrix products on onnxruntime: a one-node ONNX model (Gemm, Transpose) built in memory, one
 * session per (element type, transposes, scaling, accumulate-into), run by the chosen
 * execution provider (on cpu: MLAS, multi-threaded). The heavy BLAS-3 steps of the
 * spectrum (Gram matrix, rank-2k updates) go through here.
 */
import { availableParallelism } from 'node:os';
import { onnx } from 'onnx-proto';
import type { InferenceSession, Tensor } from 'onnxruntime-node';
import type { ComputeBackend } from '../../shared/settings';
import { ort } from './ort';
import { chooseProvider, type ProviderChoice } from './providers';

export type GemmElement = 'float32' | 'float64';
export type GemmArray = Float32Array | Float64Array;

export interface GemmOptions {
  /** Use Aᵀ (A is given as K × M). */
  readonly transA?: boolean;
  /** Use Bᵀ (B is given as N × K). */
  readonly transB?: boolean;
  readonly alpha?: number;
  /** With `c`: the result is alpha·op(A)·op(B) + beta·C. */
  readonly beta?: number;
  readonly c?: GemmArray;
  /** Where to write the result (exactly rows × cols long); a new array when absent. */
  readonly output?: GemmArray;
}

/** A row-major matrix. */
export interface Matrix<T extends GemmArray = GemmArray> {
  readonly rows: number;
  readonly cols: number;
  readonly data: T;
}

/** A one-node model over 2-D tensors of `element`; `inputs` and `output` name their dimensions. */
function oneNodeModel(
  element: GemmElement,
  node: onnx.INodeProto,
  inputs: Record<string, string[]>,
  output: string[],
): Uint8Array {
  const elemType =
    element === 'float32' ? onnx.TensorProto.DataType.FLOAT : onnx.TensorProto.DataType.DOUBLE;
  const value = (name: string, dims: string[]): onnx.IValueInfoProto => ({
    name,
    type: {
      tensorType: { elemType, shape: { dim: dims.map((dimParam) => ({ dimParam })) } },
    },
  });
  const model: onnx.IModelProto = {
    irVersion: 8,
    opsetImport: [{ domain: '', version: 13 }],
    producerName: 'layerlens',
    graph: {
      name: node.opType!.toLowerCase(),
      node: [{ ...node, input: Object.keys(inputs), output: ['Y'] }],
      input: Object.entries(inputs).map(([name, dims]) => value(name, dims)),
      output: [value('Y', output)],
    },
  };
  return onnx.ModelProto.encode(model).finish();
}

function gemmModel(element: GemmElement, options: GemmOptions): Uint8Array {
  const attribute = (name: string, value: number, integer: boolean): onnx.IAttributeProto =>
    integer
      ? { name, type: onnx.AttributeProto.AttributeType.INT, i: value }
      : { name, type: onnx.AttributeProto.AttributeType.FLOAT, f: value };
  const inputs: Record<string, string[]> = { A: ['a0', 'a1'], B: ['b0', 'b1'] };
  if (options.c) inputs.C = ['c0', 'c1'];
  const node: onnx.INodeProto = {
    opType: 'Gemm',
    attribute: [
      attribute('transA', options.transA ? 1 : 0, true),
      attribute('transB', options.transB ? 1 : 0, true),
      attribute('alpha', options.alpha ?? 1, false),
      attribute('beta', options.beta ?? 1, false),
    ],
  };
  return oneNodeModel(element, node, inputs, ['y0', 'y1']);
}

function transposeModel(element: GemmElement): Uint8Array {
  return oneNodeModel(element, { opType: 'Transpose' }, { A: ['a0', 'a1'] }, ['a1', 'a0']);
}

/** Gemm sessions on one execution provider, created on first use and kept. */
export class MatMulRuntime {
  private readonly sessions = new Map<string, Promise<InferenceSession>>();
  private choice: ProviderChoice;

  /** `threads`: onnxruntime's intra-op threads per product (one per core when absent). */
  constructor(
    readonly backend: ComputeBackend = 'cpu',
    readonly threads?: number,
  ) {
    this.choice = chooseProvider(backend);
  }

  /** The provider in use and, when it is not the requested one, why. */
  get provider(): ProviderChoice {
    return this.choice;
  }

  /** alpha·op(A)·op(B) (+ beta·C). `a`, `b` (and `c`) are row-major, of one element type. */
  async gemm<T extends GemmArray>(
    a: Matrix<T>,
    b: Matrix<T>,
    options: GemmOptions = {},
  ): Promise<Matrix<T>> {
    const element: GemmElement = a.data instanceof Float64Array ? 'float64' : 'float32';
    const m = options.transA ? a.cols : a.rows;
    const k = options.transA ? a.rows : a.cols;
    const kB = options.transB ? b.cols : b.rows;
    const n = options.transB ? b.rows : b.cols;
    if (k !== kB) throw new Error(`gemm: inner dimensions differ (${k} and ${kB})`);
    const session = await this.session(element, options);
    const tensor = (data: GemmArray, rows: number, cols: number) =>
      new (ort().Tensor)(element === 'float32' ? 'float32' : 'float64', data, [rows, cols]);
    const feeds: Record<string, Tensor> = {
      A: tensor(a.data, a.rows, a.cols),
      B: tensor(b.data, b.rows, b.cols),
    };
    if (options.c) feeds.C = tensor(options.c, m, n);
    if (options.output) {
      if (options.output.length !== m * n) {
        throw new Error(`gemm: the output holds ${options.output.length} values, not ${m * n}`);
      }
      // onnxruntime writes straight into a pre-allocated output: no copy, no new array.
      await session.run(feeds, { Y: tensor(options.output, m, n) });
      return { rows: m, cols: n, data: options.output as T };
    }
    const output = (await session.run(feeds)).Y!;
    return { rows: m, cols: n, data: output.data as T };
  }

  /** Aᵀ, into `output` (cols × rows long) when given. */
  async transpose<T extends GemmArray>(a: Matrix<T>, output?: T): Promise<Matrix<T>> {
    const element: GemmElement = a.data instanceof Float64Array ? 'float64' : 'float32';
    let session = this.sessions.get(`${element}/transpose`);
    if (!session) {
      session = this.createSession(transposeModel(element));
      this.sessions.set(`${element}/transpose`, session);
    }
    const input = new (ort().Tensor)(element, a.data, [a.rows, a.cols]);
    if (output) {
      if (output.length !== a.rows * a.cols) {
        throw new Error(
          `transpose: the output holds ${output.length} values, not ${a.rows * a.cols}`,
        );
      }
      await (
        await session
      ).run({ A: input }, { Y: new (ort().Tensor)(element, output, [a.cols, a.rows]) });
      return { rows: a.cols, cols: a.rows, data: output };
    }
    const result = (await (await session).run({ A: input })).Y!;
    return { rows: a.cols, cols: a.rows, data: result.data as T };
  }

  /** A·Aᵀ (rows × rows, row-major) by symmetricProduct: the lower triangle's products only. */
  gramOfRows<T extends GemmArray>(a: Matrix<T>, blocks = 4): Promise<Matrix<T>> {
    return this.symmetricProduct(a, a, { blocks });
  }

  /**
   * alpha·A·Bᵀ (+ C), n × n row-major, for A, B (n × k) whose product is known to be
   * symmetric (A·Aᵀ; V·Wᵀ + W·Vᵀ as [V W]·[W V]ᵀ), computed by block rows of the lower
   * triangle: block row i is a product of A's rows in the block with B's rows up to it,
   * the diagonal block separately, and the upper triangle is the transpose of what lies
   * left of the diagonal blocks — (blocks + 1) / (2·blocks) of the full product's
   * arithmetic. With `c` (symmetric) the result is written into it. With `from`, C is
   * instead read from the n × n block at (`from.offset`, `from.offset`) of the row-major
   * `from.data` (rows of `from.stride` values), its lower block triangle, and the result goes
   * to `c` (required then, not overlapping it): a trailing block is updated and compacted
   * in one pass.
   */
  async symmetricProduct<T extends GemmArray>(
    a: Matrix<T>,
    b: Matrix<T>,
    options: {
      alpha?: number;
      c?: T;
      from?: { data: T; stride: number; offset: number };
      blocks?: number;
    } = {},
  ): Promise<Matrix<T>> {
    const n = a.rows;
    const k = a.cols;
    if (b.rows !== n || b.cols !== k) {
      throw new Error(`symmetricProduct: ${n} × ${k} and ${b.rows} × ${b.cols} differ`);
    }
    const Element = a.data.constructor as { new (length: number): T };
    if (options.from && !options.c) throw new Error('symmetricProduct: `from` needs `c`');
    const result = options.c ?? new Element(n * n);
    if (result.length !== n * n) {
      throw new Error(`symmetricProduct: C holds ${result.length} values, not ${n * n}`);
    }
    const step = Math.ceil(n / (options.blocks ?? 4));
    const alpha = options.alpha ?? 1;
    const rowsOf = (m: Matrix<T>, from: number, to: number): Matrix<T> => ({
      rows: to - from,
      cols: k,
      data: m.data.subarray(from * k, to * k) as T,
    });
    /** Rows [from, to) × columns [left, right) of the result, as a contiguous copy or into it. */
    const scratch = new Element(step * n);
    const source = options.from ?? (options.c ? { data: result, stride: n, offset: 0 } : null);
    const block = (from: number, to: number, left: number, right: number): T => {
      const width = right - left;
      const data = scratch.subarray(0, (to - from) * width) as T;
      if (source) {
        const { stride, offset } = source;
        for (let r = from; r < to; r++) {
          const start = (offset + r) * stride + offset;
          data.set(source.data.subarray(start + left, start + right) as never, (r - from) * width);
        }
      }
      return data;
    };
    const store = (data: T, from: number, to: number, left: number, right: number) => {
      const width = right - left;
      for (let r = from; r < to; r++) {
        result.set(
          data.subarray((r - from) * width, (r - from + 1) * width) as never,
          r * n + left,
        );
      }
    };
    const product = async (from: number, to: number, left: number, right: number) => {
      const data = block(from, to, left, right);
      await this.gemm(rowsOf(a, from, to), rowsOf(b, left, right), {
        transB: true,
        alpha,
        ...(source ? { beta: 1, c: data } : {}),
        output: data,
      });
      return data;
    };
    for (let from = 0; from < n; from += step) {
      const to = Math.min(n, from + step);
      store(await product(from, to, from, to), from, to, from, to);
      if (from === 0) continue;
      const left = await product(from, to, 0, from);
      store(left, from, to, 0, from);
      const above = await this.transpose({ rows: to - from, cols: from, data: left });
      store(above.data, 0, from, from, to);
    }
    return { rows: n, cols: n, data: result };
  }

  private session(element: GemmElement, options: GemmOptions): Promise<InferenceSession> {
    const key = [
      element,
      options.transA ? 1 : 0,
      options.transB ? 1 : 0,
      options.alpha ?? 1,
      options.beta ?? 1,
      options.c ? 'c' : '',
    ].join('/');
    let session = this.sessions.get(key);
    if (!session) {
      session = this.createSession(gemmModel(element, options));
      this.sessions.set(key, session);
    }
    return session;
  }

  private async createSession(model: Uint8Array): Promise<InferenceSession> {
    const create = (provider: string) =>
      ort().InferenceSession.create(model, {
        executionProviders: [provider],
        graphOptimizationLevel: 'all',
        // Explicit: left to itself, onnxruntime sizes its pool from the physical cores it
        // detects, and on some machines (a 2-core VM here) it detects one and runs every
        // product in a single thread.
        intraOpNumThreads: this.threads ?? availableParallelism(),
        // A provider that cannot start is reported in the result, not on stderr.
        logSeverityLevel: provider === 'cpu' ? 2 : 4,
        // Without its arena onnxruntime frees each product's buffers when the run ends; with
        // it, the largest stayed reserved (7-19 MB of peak RSS over the 'fast' spectra of 4
        // Llama-7B layers), and these products are few and large enough for malloc.
        enableCpuMemArena: false,
        // Threads that spin between the many short products only steal the cores from
        // the rest of the work (and from other processes).
        extra: { session: { intra_op: { allow_spinning: '0' } } },
      });
    if (this.choice.provider === 'cpu') return create('cpu');
    try {
      return await create(this.choice.provider);
    } catch (error) {
      const requested = this.backend;
      this.choice = {
        provider: 'cpu',
        fallback: `${requested} could not start (${error instanceof Error ? error.message.split('\n')[0] : String(error)})`,
      };
      return create('cpu');
    }
  }

  async dispose(): Promise<void> {
    const sessions = [...this.sessions.values()];
    this.sessions.clear();
    for (const session of sessions) {
      try {
        await (await session).release();
      } catch {
        // A session that failed to start has nothing to release.
      }
    }
  }
}

/** Gemm sessions per backend and thread count, kept for the life of the thread and shared by its users. */
const sharedRuntimes = new Map<string, MatMulRuntime>();

/** The thread's MatMulRuntime for `backend` (and `threads` per product), created on first use. */
export function sharedMatMulRuntime(
  backend: ComputeBackend = 'cpu',
  threads?: number,
): MatMulRuntime {
  const key = `${backend}/${threads ?? ''}`;
  let runtime = sharedRuntimes.get(key);
  if (!runtime) {
    runtime = new MatMulRuntime(backend, threads);
    sharedRuntimes.set(key, runtime);
  }
  return runtime;
}
