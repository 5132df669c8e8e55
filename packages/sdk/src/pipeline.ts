/**
 * The fluent builder behind `client.from(env)`: a chain of runs where state carries over
 * through snapshots, and `branch(n)` fans the chain out into n independent copies.
 */
import { ErrorCode, FaasError } from '@faas/protocol/errors';
import type { ExecRequest, ExecuteRequest, ExecutionMode, ExecutionResult } from './execution-types.ts';
import type { ExecutionsApi } from './executions-api.ts';
import { succeeded } from './orchestration.ts';

/**
 * What one step runs: a string is shell code (like `executeEphemeral`), an array an argv, an
 * object a full request (`code` or `command` plus env vars, stdin, timeout, ...).
 *
 * @example
 * const steps: PipelineCommand[] = ['make test', ['ls', '-la'], { code: 'print(1)', language: 'python' }];
 */
export type PipelineCommand = string | string[] | ExecRequest;

/**
 * A step's command, or a function of the line it runs on (0 before any `branch()`; after
 * `branch(n)`, 0 to n-1), so each branch can do something different.
 *
 * @example
 * const perBranch: PipelineStepInput = (line) => `./try-variant ${line}`;
 */
export type PipelineStepInput = PipelineCommand | ((line: number) => PipelineCommand);

/** Per-step limits and the like: everything of an ExecuteRequest but what and where to run. */
export type PipelineStepOptions = Omit<ExecuteRequest, 'code' | 'command' | 'mode' | 'env' | 'checkpoint' | 'branchFrom' | 'instanceId' | 'functionId' | 'cacheKey' | 'cacheFailures' | 'id'>;

/**
 * One step's runs, one per line, in line order.
 *
 * @example
 * const [first] = result.steps; console.log(first.mode, first.results[0].snapshotId);
 */
export interface PipelineStep {
  /** The mode every run of this step used. */
  mode: ExecutionMode;
  /** Whether the step was followed by `.snapshot()`, so later steps start from its state. */
  snapshot: boolean;
  results: ExecutionResult[];
}

/**
 * What `.run()` resolves with. A step in which any run failed (did not exit 0) ends the chain:
 * `ok` is false and that step is the last in `steps`.
 *
 * @example
 * const { ok, steps, snapshotIds } = await pipeline.run();
 */
export interface PipelineResult {
  ok: boolean;
  steps: PipelineStep[];
  /** Per line at the end: the snapshot later steps would start from (null: a clean instance). */
  snapshotIds: Array<string | null>;
}

/** The start of a chain: nothing runs until `.run()`. @example client.from('host').exec('make'); */
export interface PipelineStart {
  /** Adds a run. See {@link Pipeline.exec}. */
  exec(step: PipelineStepInput, options?: PipelineStepOptions): Pipeline;
}

/**
 * A chain of runs in one environment, executed by `.run()`. Each `.exec()` runs in a fresh
 * instance that starts from the current state of its line: the environment's clean
 * filesystem at first, later the snapshot the last `.snapshot()` kept. Changes of a run not
 * followed by `.snapshot()` are not seen by later steps. `.branch(n)` splits every line into n
 * copies of its state; the next `.exec()` runs once on each, concurrently.
 *
 * Modes used: a run with no state yet is `ephemeral`, or `checkpointed` when it is kept; a run
 * that starts from a snapshot is `branched` from it (copy-on-write; the snapshot never changes).
 *
 * @example
 * const { steps } = await client
 *   .from('host')
 *   .exec('echo hi > /workspace/f')          // checkpointed: its state is kept
 *   .snapshot()
 *   .branch(3)
 *   .exec((i) => `cat /workspace/f; echo ${i} >> /workspace/f`) // 3 branched runs, each sees "hi" only
 *   .run();
 * steps[1].results.map((r) => r.stdout); // ["hi\n", "hi\n", "hi\n"]
 */
export interface Pipeline extends PipelineStart {
  /** Keeps the state the last `.exec()` left (it runs checkpointed or branched and its snapshot becomes the line's state). */
  snapshot(): Pipeline;
  /** Splits every line into `n` copies (1-64); the next `.exec()` runs on each. */
  branch(n: number): BranchedPipeline;
  /** Runs the chain step by step and resolves with every run; rejects on a request error. */
  run(): Promise<PipelineResult>;
}

/** A chain right after `.branch(n)`: it needs the `.exec()` that runs on the branches. @example client.from('host').exec('make').snapshot().branch(2).exec('make test'); */
export interface BranchedPipeline extends PipelineStart {}

type Plan = { kind: 'exec'; input: PipelineStepInput; options: PipelineStepOptions; keep: boolean } | { kind: 'branch'; count: number };

/** Largest fan-out of one `.branch()`; the product over a chain is bounded the same way. */
const MAX_LINES = 64;

/** @internal Created by `client.from(env)`. Immutable: every method returns a new builder. */
export class PipelineBuilder implements Pipeline {
  readonly #api: ExecutionsApi;
  readonly #env: string;
  readonly #plan: readonly Plan[];

  constructor(api: ExecutionsApi, env: string, plan: readonly Plan[] = []) {
    this.#api = api;
    this.#env = env;
    this.#plan = plan;
  }

  exec(step: PipelineStepInput, options: PipelineStepOptions = {}): Pipeline {
    return new PipelineBuilder(this.#api, this.#env, [...this.#plan, { kind: 'exec', input: step, options, keep: false }]);
  }

  snapshot(): Pipeline {
    const last = this.#plan.at(-1);
    if (last?.kind !== 'exec') throw invalid('snapshot() keeps the state of the exec() just before it: add an exec() first');
    return new PipelineBuilder(this.#api, this.#env, [...this.#plan.slice(0, -1), { ...last, keep: true }]);
  }

  branch(n: number): BranchedPipeline {
    if (!Number.isInteger(n) || n < 1 || n > MAX_LINES) throw invalid(`branch(n) takes a whole number from 1 to ${MAX_LINES}, got ${n}`);
    if (this.#plan.at(-1)?.kind !== 'exec') throw invalid('branch(n) splits the state after an exec(): add an exec() first');
    return new PipelineBuilder(this.#api, this.#env, [...this.#plan, { kind: 'branch', count: n }]);
  }

  async run(): Promise<PipelineResult> {
    if (this.#plan.at(-1)?.kind !== 'exec') throw invalid('the chain must end with an exec(): branch(n) needs the exec() that runs on the branches');
    const fanOut = this.#plan.reduce((count, step) => (step.kind === 'branch' ? count * step.count : count), 1);
    if (fanOut > MAX_LINES) throw invalid(`the chain fans out to ${fanOut} lines; at most ${MAX_LINES}`);
    let lines: Array<string | null> = [null];
    const steps: PipelineStep[] = [];
    for (const step of this.#plan) {
      if (step.kind === 'branch') {
        lines = lines.flatMap((base) => Array.from({ length: step.count }, () => base));
        continue;
      }
      const mode: ExecutionMode = lines[0] === null ? (step.keep ? 'checkpointed' : 'ephemeral') : 'branched';
      const results = await Promise.all(
        lines.map((base, line) => {
          const request: ExecuteRequest = { ...step.options, ...toRequest(typeof step.input === 'function' ? step.input(line) : step.input), env: this.#env, mode };
          if (base !== null) request.branchFrom = base;
          return this.#api.execute(request);
        }),
      );
      steps.push({ mode, snapshot: step.keep, results });
      if (!results.every(succeeded)) return { ok: false, steps, snapshotIds: lines };
      if (step.keep) {
        lines = results.map((result) => {
          if (!result.snapshotId) throw new FaasError(ErrorCode.INTERNAL_ERROR, `execution ${result.id} left no snapshot to continue from`, { execution_id: result.id });
          return result.snapshotId;
        });
      }
    }
    return { ok: true, steps, snapshotIds: lines };
  }
}

function toRequest(command: PipelineCommand): ExecRequest {
  if (typeof command === 'string') return { code: command };
  if (Array.isArray(command)) return { command };
  return command;
}

function invalid(message: string): FaasError {
  return new FaasError(ErrorCode.VALIDATION_FAILED, message, {});
}
