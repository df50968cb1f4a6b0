/**
 * The ONNX module: decodes a model once (OnnxModel) and owns its scopes, tensor slots,
 * weight uses, the pass-through table, and opset/IR helpers. The reader, compression,
 * sensitivity, planning and validation use it; nothing else walks an ONNX graph.
 */
export { OnnxModel, readOnnxFile } from './model';
export { onnxModelOf, onnxStructureOf } from './opened';
export {
  attr,
  floatAttribute,
  intAttribute,
  intsAttribute,
  makeNode,
  NameAllocator,
  stringAttribute,
  usedNames,
} from './nodes';
export {
  defaultOpset,
  ensureDomain,
  IR_VERSION_INITIALIZERS_NOT_INPUTS,
  irVersionOf,
  opsetRaiseBlocker,
  raiseIrVersion,
  raiseOpset,
} from './opset';
export {
  MAX_PASS_THROUGH_STEPS,
  PASS_THROUGH_OPS,
  passesThrough,
  type PassThroughOp,
} from './passThrough';
export {
  allScopes,
  definedNames,
  isDefaultDomain,
  isGraphOutput,
  mainScope,
  nodeLabel,
  subgraphsOf,
  walkScopes,
  type Scope,
  type ScopeVisitor,
} from './scopes';
export { quantizedWeights, type QuantizedGrid, type QuantizedWeight } from './quantized';
export { constantValueAttribute, tensorSlots, type TensorSlot } from './slots';
export { collectUses, usesOf, type Use, type UseLookup } from './uses';
export {
  layerOf,
  lowRankReadProblem,
  nodeIndexIn,
  onlyDirectMatMul,
  weightLayout,
  weightUses,
  type LayoutKind,
  type WeightLayout,
  type WeightUse,
} from './weights';
export { sortGraphs, topologicalOrder } from './topo';
