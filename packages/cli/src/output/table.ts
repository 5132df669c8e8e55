/** Plain-text tables and human durations for list commands. */

/**
 * Left-aligned columns separated by two spaces; the last column is not padded.
 *
 * @example
 * formatTable(['ID', 'STATE'], [['inst-1', 'running']]);
 * // "ID      STATE\ninst-1  running\n"
 */
export function formatTable(headers: string[], rows: string[][]): string {
  const widths = headers.map((header, column) => Math.max(header.length, ...rows.map((row) => (row[column] ?? '').length)));
  const line = (cells: string[]): string =>
    cells
      .map((cell, column) => (column === cells.length - 1 ? cell : cell.padEnd(widths[column] ?? 0)))
      .join('  ')
      .trimEnd();
  return [line(headers), ...rows.map(line)].join('\n') + '\n';
}

/**
 * How long ago, coarsely: "12s ago", "5m ago", "3h ago", "2d ago".
 *
 * @example
 * formatAge(new Date(Date.now() - 90_000)); // "1m ago"
 */
export function formatAge(time: Date, now: Date = new Date()): string {
  const seconds = Math.max(0, Math.floor((now.getTime() - time.getTime()) / 1000));
  if (seconds < 60) return `${seconds}s ago`;
  if (seconds < 3600) return `${Math.floor(seconds / 60)}m ago`;
  if (seconds < 86_400) return `${Math.floor(seconds / 3600)}h ago`;
  return `${Math.floor(seconds / 86_400)}d ago`;
}

/**
 * A byte count for people: exact below 1 KiB, else one decimal in KiB, MiB, GiB or TiB.
 *
 * @example
 * formatBytes(512);     // "512 B"
 * formatBytes(1536);    // "1.5 KiB"
 */
export function formatBytes(bytes: number): string {
  if (bytes < 1024) return `${bytes} B`;
  const units = ['KiB', 'MiB', 'GiB', 'TiB'];
  let value = bytes / 1024;
  let unit = 0;
  while (value >= 1024 && unit < units.length - 1) {
    value /= 1024;
    unit++;
  }
  return `${value.toFixed(1)} ${units[unit]}`;
}
