/**
 * Named limits. Every size, count and offset read from a model file is checked
 * against the file's real size and against one of these before it is used, so a
 * hostile or corrupt file fails with a clear message instead of an allocation or a hang.
 */

/** safetensors header (JSON) length. The reference implementation refuses headers over 100 MB. */
export const MAX_SAFETENSORS_HEADER_BYTES = 100 * 1024 * 1024;

/** A protobuf-encoded ONNX file cannot exceed 2 GiB (protobuf's own limit); larger models use external data. */
export const MAX_ONNX_PROTO_BYTES = 2 * 1024 * 1024 * 1024 - 1;

/**
 * ONNX files up to this size stay decoded while they are open, so that compression,
 * sensitivity and planning reuse the reader's decode; larger ones are decoded again when
 * such work asks (keeping them would hold the whole file in memory).
 */
export const MAX_KEPT_DECODED_ONNX_BYTES = 256 * 1024 * 1024;
/**
 * Likewise for models with many tensors: past this many, their decoded TensorProtos (about
 * a kilobyte each) are not kept while the model is open.
 */
export const MAX_KEPT_DECODED_ONNX_TENSORS = 100_000;

/**
 * Nesting depth of JSON read from a file (safetensors headers and indexes, packed-file
 * indexes, recipes, input tensors). Real files nest a few levels (a tensor input as many as
 * its rank); the depth is counted before parsing, so deep nesting never reaches the
 * recursive JSON code that would overflow the stack.
 */
export const MAX_JSON_DEPTH = 64;

/** Tensor rank. Real models stay well below 8; 32 leaves room and still bounds loops. */
export const MAX_TENSOR_RANK = 32;

/** Element count of one tensor: beyond 2^53 the count is no longer exact in a JS number. */
export const MAX_TENSOR_ELEMENTS = Number.MAX_SAFE_INTEGER;

/** Tensors in one model (the largest public checkpoints hold a few tens of thousands). */
export const MAX_TENSORS = 1_000_000;

/**
 * A `*.safetensors.index.json` file. Real indexes hold one short line per tensor (a few MB
 * for the largest checkpoints); the bound keeps a stray huge JSON file from being parsed.
 */
export const MAX_SAFETENSORS_INDEX_BYTES = 64 * 1024 * 1024;

/** Shard files named by one `*.safetensors.index.json`, or files of one split GGUF model. */
export const MAX_SHARDS = 100_000;

/** Nesting of If/Loop/Scan subgraphs followed by the ONNX reader. */
export const MAX_SUBGRAPH_DEPTH = 64;

/**
 * Largest tensor that is materialised in memory to compute statistics when its bytes
 * are not a plain range of a file (ONNX typed fields, sparse initializers).
 */
export const MAX_IN_MEMORY_TENSOR_BYTES = 1024 * 1024 * 1024;

/**
 * Bytes of matrix values one spectrum job may hold whole (in its working precision): a
 * 2048 × 2048 float32 matrix fits. A larger matrix whose method needs only products with it
 * (top-k and 'fast' spectra) is streamed from its file in row panels of
 * SPECTRUM_PANEL_BYTES instead, widened to float32 panel by panel, so that no vocabulary
 * embedding or MLP matrix of an LLM is ever whole in memory.
 */
export const MAX_SPECTRUM_HELD_BYTES = 16 * 1024 * 1024;

/** Working-precision bytes of one row panel of a streamed spectrum matrix. */
export const SPECTRUM_PANEL_BYTES = 8 * 1024 * 1024;

/**
 * Dense form of one sparse initializer, built in memory to compute its statistics. A sparse
 * tensor of a hundred bytes can claim a shape of gigabytes; beyond this it is refused with
 * the reason (real sparse initializers are small).
 */
export const MAX_DENSIFIED_SPARSE_BYTES = 64 * 1024 * 1024;

/**
 * Largest tensor of a packed (.llz) file whose statistics are computed. Its chunks are
 * decoded on the way (tens of MB/s), and a file of a few kilobytes can declare a terabyte of
 * zeros; beyond this (about a minute of decoding) statistics are refused with the reason.
 */
export const MAX_PACKED_STATS_BYTES = 4 * 1024 * 1024 * 1024;

/**
 * Bytes a statistics worker reads at a time. Each worker holds two such buffers (one read
 * ahead); 4 MB reads cost no more CPU than 16 MB ones and keep a worker 24 MB smaller.
 */
export const STATS_CHUNK_BYTES = 4 * 1024 * 1024;

/** Histogram bins of the per-tensor statistics. */
export const HISTOGRAM_BINS = 256;

/** Rows one `layerlens/tensors` page may return. */
export const MAX_PAGE_SIZE = 5000;

/** Tensors one `layerlens/tensorStats` request may name. */
export const MAX_STATS_BATCH = 1024;

/**
 * Largest smaller side of a matrix whose full singular spectrum is computed (the Gram
 * matrix of 8192² float64 takes 512 MB); beyond it only the top-k values are.
 */
export const MAX_FULL_SPECTRUM_SIDE = 8192;

/** Singular values a top-k spectrum may ask for. */
export const MAX_TOPK_SINGULAR_VALUES = 1024;

/**
 * A file tensor from this size on has its statistics split across the worker pool (each
 * worker reads a part); smaller ones go to one worker whole, several tensors at once.
 */
export const SPLIT_STATS_MIN_BYTES = 64 * 1024 * 1024;

/**
 * Low-rank factorisation: the smaller side of a weight matrix, and its element count.
 * Larger matrices are skipped with this reason. The factors come from a randomized SVD
 * whose cost is a dozen products of W with a thin (r + p)-column sketch on onnxruntime,
 * ≈ 24·rows·cols·(r + p) flops (seconds for 8192 × 8192 at rank 64); an energy target
 * first needs the full spectrum, which is bounded by MAX_FULL_SPECTRUM_SIDE (same side).
 * The element count keeps W and its float64 working copies within a few hundred MiB.
 */
export const MAX_LOWRANK_SIDE = 8192;
export const MAX_LOWRANK_ELEMENTS = 64 * 1024 * 1024;

/** One sample-input file (.npy, .npz, .json) read for validation, and one array in it. */
export const MAX_SAMPLE_INPUT_BYTES = 256 * 1024 * 1024;

/** Entries of one .npz archive. */
export const MAX_NPZ_ENTRIES = 4096;

/** Python scripts of the workspace read to link layer definitions and model files (code lenses). */
export const MAX_WORKSPACE_SCRIPTS = 2000;

/** A Python script larger than this is not parsed for code lenses (generated code, data dumps). */
export const MAX_SCRIPT_BYTES = 2 * 1024 * 1024;

/** Folder depth searched below each workspace folder for Python scripts. */
export const MAX_SCRIPT_SEARCH_DEPTH = 8;

/** Tensors whose statistics one hover on a layer definition asks for. */
export const MAX_HOVER_TENSORS = 64;

/**
 * Bytes of a packed (.llz) file's segment index (JSON) once inflated: about 60 bytes per
 * 256 KB chunk, so this covers models of about 500 GB. The bound holds while inflating, so a
 * small index that inflates without end stops here.
 */
export const MAX_LLZ_INDEX_BYTES = 128 * 1024 * 1024;

/** Input bytes per chunk of a packed file; each chunk is coded and decoded on its own. */
export const LLZ_CHUNK_BYTES = 256 * 1024;

/** Largest chunk size a packed file may declare (its chunks are held in memory one by one). */
export const MAX_LLZ_CHUNK_BYTES = 64 * 1024 * 1024;

/** Segments (tensors and the bytes between them) of one packed file. */
export const MAX_LLZ_SEGMENTS = 2 * MAX_TENSORS + 1;

/** Chunks decoded at once (in flight across the workers) while packing or unpacking. */
export const LLZ_CHUNKS_IN_FLIGHT = 16;

/** Tensors one `layerlens/compressibility` request may name. */
export const MAX_COMPRESSIBILITY_BATCH = 1024;

/**
 * Bytes of a packed file's non-tensor segments (headers, protobuf structure) decoded into a
 * temporary file to open it as a model. A small container can declare gigabytes of
 * structure that decode from a few zero chunks; real structure is a small part of a model
 * (ONNX keeps large tensors as raw ranges, which are tensor segments). Packing refuses
 * models beyond it, so every packed file LayerLens writes opens again.
 */
export const MAX_LLZ_STRUCTURE_BYTES = 256 * 1024 * 1024;

/** Largest recipe file read (a recipe lists at most MAX_TENSORS steps of a few hundred bytes). */
export const MAX_RECIPE_BYTES = 256 * 1024 * 1024;

/** Key/value pairs of one GGUF file's metadata (real files hold a few dozen). */
export const MAX_GGUF_METADATA_ENTRIES = 1_000_000;

/** One GGUF string (a key, a value, a tokenizer token or a chat template). */
export const MAX_GGUF_STRING_BYTES = 64 * 1024 * 1024;

/** Elements of one GGUF metadata array (tokenizer vocabularies hold a few hundred thousand). */
export const MAX_GGUF_ARRAY_LENGTH = 64 * 1024 * 1024;

/** Arrays nested in GGUF metadata arrays, followed by the reader. */
export const MAX_GGUF_ARRAY_DEPTH = 8;

/** Dimensions of a GGUF tensor (ggml's GGML_MAX_DIMS). */
export const MAX_GGUF_TENSOR_DIMS = 4;

/** Largest `general.alignment` of a GGUF file's tensor data (a power of two). */
export const MAX_GGUF_ALIGNMENT = 1024 * 1024;

/** Bytes of an importance matrix file (llama-imatrix's `.dat` or GGUF), read whole. */
export const MAX_IMATRIX_BYTES = 1024 * 1024 * 1024;

/** Entries (weight tensors) of an importance matrix. */
export const MAX_IMATRIX_ENTRIES = 1_000_000;

/** Bytes of one tensor name (or the dataset name) in a legacy `.dat` importance matrix. */
export const MAX_IMATRIX_NAME_BYTES = 64 * 1024;

/** Values of one importance matrix entry (input columns × experts). */
export const MAX_IMATRIX_VALUES = 64 * 1024 * 1024;
/** A PyTorch checkpoint's pickle (`data.pkl`, or a legacy file's pickles): read whole at open. */
export const MAX_PICKLE_BYTES = 512 * 1024 * 1024;

/** Nesting of containers in a pickle (MARK frames, and dicts/lists inside one another). */
export const MAX_PICKLE_DEPTH = 1000;

/** Entries of a pickle's memo (BINPUT/MEMOIZE), and items on its stack at once. */
export const MAX_PICKLE_MEMO = 10_000_000;

/** One string or bytes object in a pickle (names, metadata; tensor bytes live elsewhere). */
export const MAX_PICKLE_STRING_BYTES = 64 * 1024 * 1024;

/** Bytes of one LONG1/LONG4 integer in a pickle (torch writes at most 8). */
export const MAX_PICKLE_LONG_BYTES = 64;

/** Entries in a PyTorch zip checkpoint (one per storage, plus a handful of records). */
export const MAX_PYTORCH_ZIP_ENTRIES = MAX_TENSORS + 64;

/** Non-tensor values of a checkpoint (epoch, hyper-parameters…) shown as metadata. */
export const MAX_PYTORCH_METADATA_ENTRIES = 64;

/** Cells of a quantization grid (block scales) sent to the heatmap; taller grids pool rows. */
export const MAX_BLOCK_SCALE_CELLS = 1024 * 1024;

/** Nodes of one model's graph view, subgraphs included (the largest exported graphs hold a few hundred thousand). */
export const MAX_GRAPH_NODES = 1_000_000;

/** Edges of one model's graph view (a value read by many nodes is one edge per reader). */
export const MAX_GRAPH_EDGES = 4_000_000;

/** Matches of one graph search sent to the view (all are counted). */
export const MAX_GRAPH_MATCHES = 1000;

/**
 * Parts of one name scope (`/encoder/layer.3/attention/MatMul` has three) or one dotted
 * tensor name that become nested groups; the rest of a deeper name stays in its last group.
 */
export const MAX_GROUP_DEPTH = 32;

/** Values of each side read at a time when two tensors are compared (model diff). */
export const DIFF_CHUNK_ELEMENTS = 1 << 20;

/**
 * Largest pair whose values the Compare panel's detail holds in memory (A, B and ΔW as
 * float32, 3 × 64 MB at this size): its spectra, ΔW heatmap and fine-tune analysis.
 */
export const MAX_PAIR_DETAIL_ELEMENTS = 16 * 1024 * 1024;

/** Structure changes listed one by one in a model diff (all are counted). */
export const MAX_LISTED_STRUCTURE_CHANGES = 2000;

/** Singular values of ΔW kept in a diff's fine-tune analysis (the largest). */
export const MAX_DELTA_SPECTRUM_VALUES = 256;

/**
 * An HTML report (`layerlens report`) embeds the value histograms of at most this many
 * tensors, the largest by bytes; the others' statistics come without a histogram.
 */
export const REPORT_MAX_HISTOGRAMS = 1024;

/**
 * An HTML report embeds the spectra (singular values and metrics) of at most this many
 * weight matrices, the largest by bytes: a spectrum holds up to min(rows, cols) values.
 */
export const REPORT_MAX_SPECTRA = 32;
