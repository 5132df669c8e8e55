export * from './common.ts';
export * from './executions.ts';
export * from './events.ts';
export * from './instances.ts';
export * from './system.ts';
export * from './snapshots.ts';
export * from './modes.ts';
export * from './sync.ts';
