/** A raw path as JSON text: UTF-8 when it is, with the exact bytes alongside (base64) when it is not. */
export function wirePath(path: Buffer): { path: string; path_base64?: string } {
  const text = path.toString('utf8');
  return Buffer.from(text, 'utf8').equals(path) ? { path: text } : { path: text, path_base64: path.toString('base64') };
}
