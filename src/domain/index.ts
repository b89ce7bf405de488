export * from './errors.js';
export * from './ids.js';
export * from './duration.js';
export * from './principal.js';
export * from './request.js';
export * from './review.js';
export * from './grant.js';
export * from './policy/types.js';
