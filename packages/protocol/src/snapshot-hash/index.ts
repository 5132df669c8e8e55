export {
  SnapshotHasher,
  FileHasher,
  TREE_PREFIX,
  ENV_PREFIX,
  SNAPSHOT_PREFIX,
  TYPE_TAG,
  type SnapshotHashes,
  type HashTreeOptions,
  type TreeNodeVisitor,
} from './snapshot-hasher.ts';
export { encodeTreeNode, decodeTreeNode, type TreeNodeEntry } from './tree-node.ts';
export { dir, file, symlink, entriesOf, SYMLINK_MODE, type EntryName, type FileEntry, type SymlinkEntry, type DirEntry, type DirEntries, type FsEntry } from './tree.ts';
export { hashParents, parentInput, PARENTS_PREFIX } from './parents.ts';
