/** Messages between the graph view and its layout workers (layoutWorker.ts). */

export interface LayoutBox {
  readonly id: string;
  readonly width: number;
  readonly height: number;
}

export interface LayoutEdge {
  readonly from: string;
  readonly to: string;
}

/** One group's children to lay out (bandedLayout.ts cuts a large one into bands). */
export interface LayoutInput {
  readonly boxes: readonly LayoutBox[];
  readonly edges: readonly LayoutEdge[];
}

/** What one worker lays out in one dagre run: a small group, or one band of a large one. */
export interface LayoutRequest extends LayoutInput {
  readonly id: number;
  /**
   * A band of a larger group: ranked longest-path and kept in dagre's first ordering,
   * without crossing reduction (dagreLayout.ts says why).
   */
  readonly band: boolean;
}

export interface LayoutResult {
  readonly id: number;
  /** Top-left corner of each box, by id. */
  readonly positions: Readonly<Record<string, readonly [number, number]>>;
  /** Each edge's route, in the order of the request's edges. */
  readonly routes: readonly (readonly (readonly [number, number])[])[];
  readonly width: number;
  readonly height: number;
  /** Milliseconds the layout took in the worker (summed over a group's bands). */
  readonly ms: number;
  readonly error?: string;
}
