/**
 * `@faas/sdk/sync` (Node only): file sync between a local directory and an instance.
 *
 * @example
 * import { syncFiles } from '@faas/sdk/sync';
 * await syncFiles(client, instanceId, './app', '/workspace/app', { direction: 'upload' });
 */
export { syncFiles, type SyncFilesOptions, type SyncFilesResult } from './sync-files.ts';
export type { SyncOptions, SyncPlan, SyncProgress, SyncResult, PlanStep, ManifestEntry } from '@faas/protocol/sync';
