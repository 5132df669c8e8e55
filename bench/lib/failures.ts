/**
 * Failed samples are counted and reported, not hidden and not fatal one by one: on a loaded
 * machine a rare failure is itself a finding. Too many end the section.
 */
export class Failures {
  private readonly messages = new Map<string, number>();
  count = 0;

  constructor(
    private readonly what: string,
    private readonly limit: number,
  ) {}

  /** Records a failure; throws once more than `limit` happened. */
  record(err: unknown): void {
    this.count++;
    const message = (err instanceof Error ? err.message : String(err)).replace(/\b(inst|exec)-[a-z0-9]+/g, '$1-…').slice(0, 300);
    this.messages.set(message, (this.messages.get(message) ?? 0) + 1);
    if (this.count > this.limit) throw new Error(`${this.what}: ${this.count} failures, giving up; ${this.summary()}`);
  }

  summary(): string {
    return [...this.messages].map(([m, k]) => `${k}x ${m}`).join('; ');
  }

  /** Prints the failure line (always, so "0 failures" is visible too). */
  print(total: number): void {
    console.log(`  failures (${this.what}): ${this.count} of ${total}${this.count > 0 ? ` (excluded from the figures): ${this.summary()}` : ''}`);
  }
}
