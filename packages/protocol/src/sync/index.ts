/**
 * File sync engine (Node only): manifests of local trees with gitignore filtering, the plan
 * that turns one tree into another, and its application to a destination.
 */
export type * from './types.ts';
export { decodeFrames, encodeFrames, type IncomingContent, type OutgoingContent } from './frames.ts';
export {
  decodeUploadFrames,
  createUploadDigest,
  writeFileHeader,
  sameFrame,
  END_FRAME,
  FILE_HEADER_BYTES,
  DIGEST_BYTES,
  type UploadFrame,
} from './upload-frames.ts';
export { checkRelativePath, joinInside, comparePaths } from './paths.ts';
export { TreeFilter } from './filters.ts';
export { buildManifest, hashFile, hashEntries, checksumEntries, checksumFile, createChecksumHasher, identityOf, type ChecksumMemory, type ManifestResult, type ManifestWalkOptions, type SkippedEntry } from './manifest.ts';
export { ChecksumCache, RACY_MARGIN_NS, type FileIdentity } from './checksum-cache.ts';
export { planSync, isAttributeOnly } from './plan.ts';
export { applyPlan, countPlan, type ApplyOptions, type SyncSource } from './apply.ts';
export { LocalDestination } from './local-destination.ts';
export { FileSynchronizer, LocalSource, type FileSynchronizerOptions, type FileSyncResult } from './file-synchronizer.ts';
