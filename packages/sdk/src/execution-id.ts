/**
 * Client-side execution ids. A request that carries an id is idempotent on the server (a retry
 * with the same id and body returns the same execution), so the SDK gives every execute call
 * one; that is what lets the transport retry it after a dropped connection.
 */

const BASE32_ALPHABET = 'abcdefghijklmnopqrstuvwxyz234567';

/**
 * A fresh random execution id: "exec-" and 16 lower-case base32 characters (80 random bits),
 * which matches the server's id pattern `^[a-z0-9][a-z0-9-]{2,62}$`.
 *
 * @example
 * generateExecutionId(); // "exec-k3q7zr2mxa4bn6tc"
 */
export function generateExecutionId(): string {
  // crypto.getRandomValues is global in browsers and in Node 19+.
  const bytes = crypto.getRandomValues(new Uint8Array(16));
  let id = 'exec-';
  for (const byte of bytes) id += BASE32_ALPHABET[byte & 31];
  return id;
}
