/**
 * Paths of the API routes, in one place. Ids are percent-encoded: they come from callers and
 * must never be able to reach another route.
 */

/** @example instancePath('inst-1'); // "/api/v1/instances/inst-1" */
export function instancePath(instanceId: string): string {
  return `/api/v1/instances/${encodeURIComponent(instanceId)}`;
}

/** @example executionPath('exec-1'); // "/api/v1/executions/exec-1" */
export function executionPath(executionId: string): string {
  return `/api/v1/executions/${encodeURIComponent(executionId)}`;
}

/** @example snapshotPath('snap-1'); // "/api/v1/snapshots/snap-1" */
export function snapshotPath(ref: string): string {
  return `/api/v1/snapshots/${encodeURIComponent(ref)}`;
}

/** @example environmentPath('host'); // "/api/v1/environments/host" */
export function environmentPath(name: string): string {
  return `/api/v1/environments/${encodeURIComponent(name)}`;
}
