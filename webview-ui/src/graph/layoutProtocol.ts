/** Messages between the graph view and its layout worker (layoutWorker.ts). */

export interface LayoutBox {
  readonly id: string;
  readonly width: number;
  readonly height: number;
}

export interface LayoutRequest {
  readonly id: number;
  readonly boxes: readonly LayoutBox[];
  readonly edges: readonly { readonly from: string; readonly to: string }[];
}

export interface LayoutResult {
  readonly id: number;
  /** Top-left corner of each box, by id. */
  readonly positions: Readonly<Record<string, readonly [number, number]>>;
  /** Each edge's route, in the order of the request's edges. */
  readonly routes: readonly (readonly (readonly [number, number])[])[];
  readonly width: number;
  readonly height: number;
  /** Milliseconds the layout took in the worker. */
  readonly ms: number;
  readonly error?: string;
}
