import { randomBytes } from 'node:crypto';

const ALPHABET = '0123456789abcdefghjkmnpqrstvwxyz'; // Crockford base32, lower case: valid in hostnames

/** A random id like `inst-8q3k2m9x7c1vz0d4` (prefix + 16 base32 chars, 80 bits). */
export function newId(prefix: 'inst' | 'exec' | 'snap' | 'key' | 'sess'): string {
  const bytes = randomBytes(16);
  let out = `${prefix}-`;
  for (let i = 0; i < 16; i++) out += ALPHABET[bytes[i]! & 31];
  return out;
}
