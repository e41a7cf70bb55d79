export * from './chunker.js';
export * from './embedder.js';
export * from './lexical-embedder.js';
export * from './onnx-embedder.js';
export * from './qdrant.js';
export * from './sqlite-vec.js';
export * from './vector-store.js';
