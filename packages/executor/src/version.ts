import { createRequire } from 'node:module';

/** The executor package version, reported by /health and the OpenAPI document. */
export const VERSION: string = (createRequire(import.meta.url)('../package.json') as { version: string }).version;
