/** The run folder: opening it, its layout, step keys, JSON records and the archive. */
export * from './run';
export * from './json';
export * from './keys';
export * from './layout';
export * from './archive';
