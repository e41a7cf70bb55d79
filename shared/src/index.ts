export * from './errors.js';
export * from './events/bus.js';
export * from './events/catalog.js';
export * from './events/event.js';
export * from './events/outbox.js';
export * from './events/uuidv7.js';
export * from './cache/cache.js';
