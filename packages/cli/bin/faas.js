#!/usr/bin/env node
// Runs the TypeScript sources directly (no build step): tsx's loader is registered first so
// `npx faas ...` works straight after `npm install`.
import { register } from 'tsx/esm/api';

register();
await import('../src/main.ts');
