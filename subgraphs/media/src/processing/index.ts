export * from './av.js';
export * from './errors.js';
export * from './image.js';
export * from './pdf.js';
export * from './process.js';
export * from './sniff.js';
