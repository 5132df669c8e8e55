/** Parses a progress line: a number 0-100 (clamped), optionally a space and a message. */
export function parseProgressLine(line: string): { progress: number; message?: string } | undefined {
  const match = /^\s*(-?\d+(?:\.\d+)?)%?(?:\s+(.*))?$/s.exec(line);
  if (!match) return undefined;
  const progress = Math.min(100, Math.max(0, Number(match[1])));
  const message = match[2]?.trim();
  return message ? { progress, message } : { progress };
}
