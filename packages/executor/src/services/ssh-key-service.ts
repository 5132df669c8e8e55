import { FaasError } from '@faas/protocol';
import type { Logger } from 'pino';
import type { ExecutorConfig } from '../config.ts';
import {
  blobOfPublicKey,
  DEFAULT_SSH_KEY_ALGORITHM,
  fingerprintOfBlob,
  generateSshKey,
  isAcceptedBlobType,
  parsePublicKey,
  requireAlgorithm,
  type GeneratedKey,
  type PublicKeyInfo,
  type SshKeyAlgorithm,
} from '../ssh/key-material.ts';
import type { PrivateKeyFiles } from '../ssh/private-key-files.ts';
import type { SshAuditEvent, SshAuditRecord, SshKeyRecord, Store } from '../store/types.ts';
import type { Clock } from '../util/clock.ts';
import { newId } from '../util/ids.ts';
import { Mutex } from '../util/mutex.ts';
import type { InstanceService } from './instance-service.ts';

/** How often the sweep notices expired keys, scheduled revocations and keys due for auto-rotation. */
export const SSH_SWEEP_INTERVAL_MS = 60_000;

export type SshKeyState = 'live' | 'expired' | 'revoked';

/** A key record with its state at the time it was read. */
export interface SshKeyView extends SshKeyRecord {
  state: SshKeyState;
}

/** A key and, when the server generated it and still holds it, its private half. */
export interface IssuedSshKey {
  key: SshKeyView;
  /** OpenSSH private key; null for bring-your-own keys. Never log it. */
  privateKey: string | null;
}

export interface RotateSshKeyOptions {
  /** ed25519, rsa or ecdsa. @default ed25519 (or the type of `publicKey`) */
  algorithm?: string;
  /** @default config.sshKeyTtlMs */
  expiresInMs?: number;
  /** How long the replaced key stays valid. @default 0: revoked at once */
  overlapMs?: number;
  /** Bring-your-own: one authorized_keys line; the server then holds no private key. */
  publicKey?: string;
  /** The key being replaced. @default the newest live key */
  currentKeyId?: string;
  /** Issue a successor this long before expiry; 0 turns it off. @default config.sshAutoRotateBeforeMs when shorter than the lifetime, else off */
  autoRotateBeforeMs?: number;
}

export type SshKeyCheck =
  | { ok: true; keyId: string; fingerprint: string }
  | { ok: false; fingerprint: string; reason: 'unknown_key' | 'expired' | 'revoked' | 'other_instance' | 'instance_not_running' | 'unsupported_key' };

export interface SshLoginAttempt {
  instanceId: string;
  keyId: string | null;
  fingerprint: string | null;
  clientAddress: string;
  success: boolean;
  reason?: string;
  method: string;
}

export interface SshKeyServiceDeps {
  store: Store;
  instances: Pick<InstanceService, 'get'>;
  files: PrivateKeyFiles;
  config: Pick<ExecutorConfig, 'sshKeyTtlMs' | 'sshKeyMaxTtlMs' | 'sshMaxKeysPerInstance' | 'sshAutoRotateBeforeMs'>;
  clock: Clock;
  logger: Logger;
  /** @default generateSshKey (tests may count or slow it) */
  generate?: (algorithm: SshKeyAlgorithm, comment: string) => Promise<GeneratedKey>;
}

/** A key's state at `now`: live until the earlier of its expiry and its (possibly scheduled) revocation. */
export function keyState(key: SshKeyRecord, now: Date): SshKeyState {
  const t = now.getTime();
  const revoked = key.revokedAt?.getTime() ?? Number.POSITIVE_INFINITY;
  const expires = key.expiresAt.getTime();
  if (t < Math.min(revoked, expires)) return 'live';
  return revoked <= expires ? 'revoked' : 'expired';
}

/** What a new key is made from and how it relates to the keys before it. */
interface IssuePlan {
  instanceId: string;
  algorithm: SshKeyAlgorithm;
  byoKey: PublicKeyInfo | undefined;
  ttlMs: number;
  /** 'keep': the parent stays valid until it expires (automatic rotation). */
  overlapMs: number | 'keep';
  currentKeyId: string | undefined;
  autoRotateBeforeMs: number | null;
  automatic: boolean;
}

const MAX_AUDIT_TEXT = 256;
const MAX_AUDIT_PAGE = 1000;

/**
 * SSH keys of instances: issue (generated or bring-your-own), rotation with an overlap window,
 * expiry, revocation, at most N live keys per instance, the audit trail, and the check the SSH
 * gateway runs on an offered key.
 *
 * Every change to keys runs under one mutex and in one store transaction, so two rotations of
 * an instance cannot both see the same "current" key or both skip an eviction. Key generation
 * (up to seconds for RSA-4096) happens before the mutex. Private key files are written before
 * the record that names them and removed after the record that retires them commits: a crash
 * in between leaves a file without a live key, which `recover()` removes, never a live key
 * without its file.
 */
export class SshKeyService {
  readonly #deps: SshKeyServiceDeps;
  readonly #generate: (algorithm: SshKeyAlgorithm, comment: string) => Promise<GeneratedKey>;
  readonly #mutex = new Mutex();
  #timer: NodeJS.Timeout | undefined;
  #sweeping: Promise<unknown> | undefined;

  constructor(deps: SshKeyServiceDeps) {
    this.#deps = deps;
    this.#generate = deps.generate ?? generateSshKey;
  }

  /**
   * Issues a new key for the instance; the current key (newest live, or `currentKeyId`) becomes
   * its `rotatedFrom` and stays valid for `overlapMs`, then is revoked (reason `rotated`). With
   * no current key this is the first issue. The oldest live keys beyond the per-instance maximum
   * are revoked (reason `evicted`).
   */
  async rotate(instanceId: string, options: RotateSshKeyOptions = {}): Promise<IssuedSshKey> {
    const { config } = this.#deps;
    const ttlMs = options.expiresInMs === undefined ? config.sshKeyTtlMs : duration('expires_in_ms', options.expiresInMs, 1, config.sshKeyMaxTtlMs);
    const overlapMs = options.overlapMs === undefined ? 0 : duration('overlap_ms', options.overlapMs, 0, config.sshKeyMaxTtlMs);
    let algorithm = options.algorithm === undefined ? undefined : requireAlgorithm(options.algorithm);
    let byoKey: PublicKeyInfo | undefined;
    if (options.publicKey !== undefined) {
      byoKey = parsePublicKey(options.publicKey);
      if (algorithm !== undefined && algorithm !== byoKey.algorithm) {
        throw new FaasError('SSH_KEY_INVALID', `public_key is an ${byoKey.algorithm} key but algorithm says ${algorithm}`, { instance_id: instanceId });
      }
      algorithm = byoKey.algorithm;
    }
    let autoRotateBeforeMs: number | null = null;
    if (options.autoRotateBeforeMs !== undefined) {
      const before = duration('auto_rotate_before_ms', options.autoRotateBeforeMs, 0, config.sshKeyMaxTtlMs);
      if (before > 0 && byoKey !== undefined) {
        throw new FaasError('VALIDATION_FAILED', 'auto_rotate_before_ms needs a key the server generates: it cannot make a successor of a bring-your-own key', { errors: [{ path: '/auto_rotate_before_ms', message: 'not with public_key' }] });
      }
      if (before >= ttlMs) {
        throw new FaasError('LIMIT_OUT_OF_RANGE', `auto_rotate_before_ms (${before}) must be shorter than the key's lifetime (${ttlMs} ms)`, { limit: 'auto_rotate_before_ms', value: before, min: 0, max: ttlMs - 1 });
      }
      autoRotateBeforeMs = before === 0 ? null : before;
    } else if (byoKey === undefined && config.sshAutoRotateBeforeMs !== undefined && config.sshAutoRotateBeforeMs > 0 && config.sshAutoRotateBeforeMs < ttlMs) {
      autoRotateBeforeMs = config.sshAutoRotateBeforeMs;
    }
    const instance = await this.#deps.instances.get(instanceId);
    if (instance.state === 'deleted') {
      throw new FaasError('INSTANCE_NOT_RUNNING', `instance ${instanceId} is deleted; its SSH keys were revoked with it`, { instance_id: instanceId, state: instance.state });
    }
    return this.#issue({
      instanceId,
      algorithm: algorithm ?? DEFAULT_SSH_KEY_ALGORITHM,
      byoKey,
      ttlMs,
      overlapMs,
      currentKeyId: options.currentKeyId,
      autoRotateBeforeMs,
      automatic: false,
    });
  }

  /** The newest live key with its private half (when the server holds one). SSH_KEY_NOT_FOUND when none is live. */
  async current(instanceId: string): Promise<IssuedSshKey> {
    await this.#deps.instances.get(instanceId);
    const now = this.#deps.clock.now();
    const key = (await this.#deps.store.sshKeys.listByInstance(instanceId)).find((k) => keyState(k, now) === 'live');
    if (key === undefined) {
      throw new FaasError('SSH_KEY_NOT_FOUND', `instance ${instanceId} has no live SSH key; rotate to issue one`, { instance_id: instanceId });
    }
    const privateKey = key.byo ? null : ((await this.#deps.files.read(key.id)) ?? null);
    return { key: { ...key, state: 'live' }, privateKey };
  }

  /** Every key of the instance (live, expired, revoked), newest first. */
  async list(instanceId: string): Promise<SshKeyView[]> {
    await this.#deps.instances.get(instanceId);
    const now = this.#deps.clock.now();
    return (await this.#deps.store.sshKeys.listByInstance(instanceId)).map((k) => ({ ...k, state: keyState(k, now) }));
  }

  /** Revokes a key at once (reason `revoked`) and removes its private file. Revoking an ended key changes nothing. */
  async revoke(instanceId: string, keyId: string): Promise<SshKeyView> {
    await this.#deps.instances.get(instanceId);
    const { record, retired } = await this.#write(async (tx, now) => {
      const key = await tx.sshKeys.get(keyId);
      if (key === undefined || key.instanceId !== instanceId) {
        throw new FaasError('SSH_KEY_NOT_FOUND', `instance ${instanceId} has no SSH key ${keyId}`, { instance_id: instanceId, key_id: keyId });
      }
      if (key.retiredAt !== null) return { record: key, retired: [] };
      const ended = await this.#end(tx, key, 'revoked', now);
      return { record: ended, retired: [ended.id] };
    });
    await this.#removeFiles(retired);
    return { ...record, state: keyState(record, this.#deps.clock.now()) };
  }

  /** The instance's audit trail, oldest first, entries after seq `after`. */
  async audit(instanceId: string, options: { limit?: number; after?: number } = {}): Promise<SshAuditRecord[]> {
    const limit = options.limit ?? 100;
    if (!Number.isSafeInteger(limit) || limit < 1 || limit > MAX_AUDIT_PAGE) {
      throw new FaasError('LIMIT_OUT_OF_RANGE', `limit must be 1 to ${MAX_AUDIT_PAGE}`, { limit: 'limit', value: limit, min: 1, max: MAX_AUDIT_PAGE });
    }
    await this.#deps.instances.get(instanceId);
    return this.#deps.store.sshKeys.listAudit(instanceId, { after: options.after, limit });
  }

  /**
   * Pure check of an offered public key (SSH wire-format blob, as ssh2 gives `ctx.key.data`) for
   * the instance; records no login attempt (that is `recordLoginAttempt`). A key of this
   * instance found ended but not yet noticed is retired on the way (its `expired` or `revoked`
   * audit entry written, its file removed), as the sweep would.
   */
  async check(instanceId: string, keyBlob: Buffer): Promise<SshKeyCheck> {
    const fingerprint = fingerprintOfBlob(keyBlob);
    if (!isAcceptedBlobType(keyBlob)) return { ok: false, fingerprint, reason: 'unsupported_key' };
    const now = this.#deps.clock.now();
    // Fingerprints select, the blob decides: equal fingerprints of different blobs cannot pass.
    const candidates = (await this.#deps.store.sshKeys.listByFingerprint(fingerprint)).filter((k) => blobOfPublicKey(k.publicKey).equals(keyBlob));
    const mine = candidates.filter((k) => k.instanceId === instanceId);
    const live = mine.find((k) => keyState(k, now) === 'live');
    if (live !== undefined) {
      const instance = await this.#deps.store.instances.get(instanceId);
      if (instance === undefined || instance.state !== 'running' || instance.pooled) return { ok: false, fingerprint, reason: 'instance_not_running' };
      return { ok: true, keyId: live.id, fingerprint };
    }
    const newest = mine[0];
    if (newest !== undefined) {
      if (newest.retiredAt === null) await this.#retireNoticed(newest.id);
      return { ok: false, fingerprint, reason: keyState(newest, now) === 'revoked' ? 'revoked' : 'expired' };
    }
    // Only a live key of another instance is reported as such; an ended one is just unknown here.
    if (candidates.some((k) => keyState(k, now) === 'live')) return { ok: false, fingerprint, reason: 'other_instance' };
    return { ok: false, fingerprint, reason: 'unknown_key' };
  }

  /** Appends a login attempt to the audit trail. */
  async recordLoginAttempt(a: SshLoginAttempt): Promise<void> {
    const details: Record<string, unknown> = { method: a.method.slice(0, 64) };
    if (a.reason !== undefined) details.reason = a.reason.slice(0, MAX_AUDIT_TEXT);
    await this.#deps.store.sshKeys.appendAudit({
      at: this.#deps.clock.now(),
      instanceId: a.instanceId.slice(0, MAX_AUDIT_TEXT),
      keyId: a.keyId,
      event: a.success ? 'login_succeeded' : 'login_failed',
      fingerprint: a.fingerprint,
      clientAddress: a.clientAddress.slice(0, MAX_AUDIT_TEXT),
      details,
    });
  }

  /** Revokes every key of a deleted instance (reason `instance_deleted`) and removes their files. */
  async instanceDeleted(instanceId: string): Promise<void> {
    const { retired } = await this.#write(async (tx, now) => {
      const ids: string[] = [];
      for (const key of await tx.sshKeys.listByInstance(instanceId)) {
        if (key.retiredAt === null) ids.push((await this.#end(tx, key, 'instance_deleted', now)).id);
      }
      return { record: undefined, retired: ids };
    });
    await this.#removeFiles(retired);
  }

  /**
   * Notices what time did: keys that expired or whose scheduled revocation came are retired
   * (audit entry, file removed); keys of instances deleted while the server was down are
   * revoked; current keys due for automatic rotation get a successor (the old one stays valid
   * until it expires). Runs periodically once `start()` is called; tests call it directly.
   */
  async sweep(): Promise<{ retired: number; rotated: number }> {
    const { store, clock } = this.#deps;
    const { retired } = await this.#write(async (tx, now) => {
      const ids: string[] = [];
      const instanceState = new Map<string, string | undefined>();
      for (const key of await tx.sshKeys.listUnretired()) {
        if (!instanceState.has(key.instanceId)) instanceState.set(key.instanceId, (await tx.instances.get(key.instanceId))?.state);
        const gone = instanceState.get(key.instanceId) === 'deleted';
        // #end's reason applies only to a key still live: here, one whose instance is gone.
        if (gone || keyState(key, now) !== 'live') ids.push((await this.#end(tx, key, gone ? 'instance_deleted' : 'revoked', now)).id);
      }
      return { record: undefined, retired: ids };
    });
    await this.#removeFiles(retired);
    let rotated = 0;
    const now = clock.now();
    const byInstance = new Map<string, SshKeyRecord[]>();
    for (const key of await store.sshKeys.listUnretired()) byInstance.set(key.instanceId, [...(byInstance.get(key.instanceId) ?? []), key]);
    for (const [instanceId, keys] of byInstance) {
      const newest = keys.filter((k) => keyState(k, now) === 'live').sort((a, b) => b.createdAt.getTime() - a.createdAt.getTime() || (a.id < b.id ? 1 : -1))[0];
      if (newest === undefined || newest.byo || newest.autoRotateBeforeMs === null) continue;
      if (now.getTime() < newest.expiresAt.getTime() - newest.autoRotateBeforeMs) continue;
      // A successor the user revoked again must not make the sweep issue one more every minute.
      if ((await store.sshKeys.listByInstance(instanceId)).some((k) => k.rotatedFrom === newest.id)) continue;
      try {
        await this.#issue({
          instanceId,
          algorithm: newest.algorithm,
          byoKey: undefined,
          ttlMs: newest.expiresAt.getTime() - newest.createdAt.getTime(),
          overlapMs: 'keep',
          currentKeyId: newest.id,
          autoRotateBeforeMs: newest.autoRotateBeforeMs,
          automatic: true,
        });
        rotated++;
      } catch (err) {
        this.#deps.logger.error({ err, instance: instanceId, key_id: newest.id }, 'automatic SSH key rotation failed');
      }
    }
    return { retired: retired.length, rotated };
  }

  /** At start-up: removes private key files no live key owns (a crash between commit and unlink), then sweeps. */
  async recover(): Promise<{ removedFiles: number }> {
    const { files, store } = this.#deps;
    let removedFiles = 0;
    for (const id of await files.list()) {
      const key = await store.sshKeys.get(id);
      if (key === undefined || key.byo || key.retiredAt !== null) {
        await files.remove(id);
        removedFiles++;
      }
    }
    await this.sweep();
    return { removedFiles };
  }

  /** Runs `sweep()` every `intervalMs` until `stop()`; the timer does not keep the process alive. */
  start(intervalMs = SSH_SWEEP_INTERVAL_MS): void {
    clearInterval(this.#timer);
    this.#timer = setInterval(() => {
      // A sweep slower than the interval (an RSA auto-rotation) is not stacked with another.
      this.#sweeping ??= this.sweep()
        .catch((err: unknown) => this.#deps.logger.error({ err }, 'SSH key sweep failed'))
        .finally(() => (this.#sweeping = undefined));
    }, intervalMs);
    this.#timer.unref();
  }

  /** Stops the timer and waits for a sweep in progress, so the store can be closed after. */
  async stop(): Promise<void> {
    clearInterval(this.#timer);
    this.#timer = undefined;
    await this.#sweeping;
  }

  async #issue(plan: IssuePlan): Promise<IssuedSshKey> {
    const { files, clock, logger, config } = this.#deps;
    const id = newId('key');
    const generated = plan.byoKey === undefined ? await this.#generate(plan.algorithm, `faas:${plan.instanceId}:${id}`) : undefined;
    const material: PublicKeyInfo = plan.byoKey ?? generated!;
    const privateKey = generated?.privateKey ?? null;
    if (privateKey !== null) await files.write(id, privateKey);
    let outcome: { record: SshKeyRecord; retired: string[] };
    try {
      outcome = await this.#write(async (tx, now) => {
        const keys = await tx.sshKeys.listByInstance(plan.instanceId);
        let parent: SshKeyRecord | undefined;
        if (plan.currentKeyId !== undefined) {
          parent = keys.find((k) => k.id === plan.currentKeyId);
          if (parent === undefined) {
            throw new FaasError('SSH_KEY_NOT_FOUND', `instance ${plan.instanceId} has no SSH key ${plan.currentKeyId}`, { instance_id: plan.instanceId, key_id: plan.currentKeyId });
          }
        } else {
          parent = keys.find((k) => keyState(k, now) === 'live');
        }
        const duplicate = keys.find((k) => k.fingerprint === material.fingerprint && keyState(k, now) === 'live');
        if (duplicate !== undefined) {
          throw new FaasError('SSH_KEY_EXISTS', `this public key is already live on instance ${plan.instanceId} as ${duplicate.id}`, { instance_id: plan.instanceId, key_id: duplicate.id });
        }
        // Strictly after the newest key: "current" is the newest, and two rotations within one
        // millisecond must not leave that to the order of random ids.
        const createdAt = new Date(Math.max(now.getTime(), (keys[0]?.createdAt.getTime() ?? 0) + 1));
        const record: SshKeyRecord = {
          id,
          instanceId: plan.instanceId,
          algorithm: material.algorithm,
          publicKey: material.publicKey,
          fingerprint: material.fingerprint,
          createdAt,
          expiresAt: new Date(createdAt.getTime() + plan.ttlMs),
          rotatedFrom: parent?.id ?? null,
          revokedAt: null,
          revokeReason: null,
          byo: plan.byoKey !== undefined,
          autoRotateBeforeMs: plan.autoRotateBeforeMs,
          retiredAt: null,
        };
        await tx.sshKeys.insert(record);
        await this.#audit(tx, record, 'issued', now, { algorithm: record.algorithm, bits: material.bits, byo: record.byo, expires_at: record.expiresAt.toISOString(), rotated_from: record.rotatedFrom });
        const retired: string[] = [];
        if (parent !== undefined) {
          const parentLive = keyState(parent, now) === 'live';
          const overlap = plan.overlapMs === 'keep' ? parent.expiresAt.getTime() - now.getTime() : plan.overlapMs;
          await this.#audit(tx, record, 'rotated', now, { rotated_from: parent.id, overlap_ms: parentLive ? overlap : 0, automatic: plan.automatic });
          if (parentLive && plan.overlapMs === 0) {
            retired.push((await this.#end(tx, parent, 'rotated', now)).id);
          } else if (parentLive && plan.overlapMs !== 'keep' && now.getTime() + plan.overlapMs < parent.expiresAt.getTime()) {
            // Scheduled: the key stays live until then; the sweep (or a check) records the revocation when it comes.
            await tx.sshKeys.update(parent.id, { revokedAt: new Date(now.getTime() + plan.overlapMs), revokeReason: 'rotated' });
          }
        }
        const max = Math.max(1, config.sshMaxKeysPerInstance);
        const live = (await tx.sshKeys.listByInstance(plan.instanceId)).filter((k) => keyState(k, now) === 'live').reverse();
        for (const old of live.slice(0, Math.max(0, live.length - max))) retired.push((await this.#end(tx, old, 'evicted', now)).id);
        return { record, retired };
      });
    } catch (err) {
      if (privateKey !== null) await files.remove(id).catch(() => undefined);
      throw err;
    }
    await this.#removeFiles(outcome.retired);
    const { record } = outcome;
    logger.info({ instance: record.instanceId, key_id: record.id, fingerprint: record.fingerprint, algorithm: record.algorithm, byo: record.byo, rotated_from: record.rotatedFrom, automatic: plan.automatic }, 'SSH key issued');
    return { key: { ...record, state: keyState(record, clock.now()) }, privateKey };
  }

  /**
   * Ends a key now if it is still live (revoked with `reason`), then retires it: the `revoked`
   * or `expired` audit entry and `retiredAt`. Its file is the caller's to remove after commit.
   */
  async #end(tx: Store, key: SshKeyRecord, reason: string, now: Date): Promise<SshKeyRecord> {
    let ended = key;
    if (keyState(key, now) === 'live') ended = await tx.sshKeys.update(key.id, { revokedAt: now, revokeReason: reason });
    const state = keyState(ended, now);
    const retired = await tx.sshKeys.update(key.id, { retiredAt: now });
    if (state === 'revoked') {
      await this.#audit(tx, retired, 'revoked', now, { reason: ended.revokeReason, effective_at: ended.revokedAt!.toISOString() });
    } else {
      await this.#audit(tx, retired, 'expired', now, { expired_at: ended.expiresAt.toISOString() });
    }
    return retired;
  }

  /** Retires one ended key found by a check (under the mutex, re-read: the sweep may have been first). */
  async #retireNoticed(keyId: string): Promise<void> {
    const { retired } = await this.#write(async (tx, now) => {
      const key = await tx.sshKeys.get(keyId);
      if (key === undefined || key.retiredAt !== null || keyState(key, now) === 'live') return { record: undefined, retired: [] };
      return { record: undefined, retired: [(await this.#end(tx, key, 'revoked', now)).id] };
    });
    await this.#removeFiles(retired);
  }

  #audit(tx: Store, key: SshKeyRecord, event: SshAuditEvent, now: Date, details: Record<string, unknown>): Promise<number> {
    return tx.sshKeys.appendAudit({ at: now, instanceId: key.instanceId, keyId: key.id, event, fingerprint: key.fingerprint, clientAddress: null, details });
  }

  /** One serialized transaction; `now` is read inside, after the wait for the mutex. */
  #write<T extends { retired: string[] }>(fn: (tx: Store, now: Date) => Promise<T>): Promise<T> {
    return this.#mutex.run(() => this.#deps.store.withTransaction((tx) => fn(tx, this.#deps.clock.now())));
  }

  /** After commit. A failure only leaves a file `recover()` removes later; the key is already dead. */
  async #removeFiles(keyIds: readonly string[]): Promise<void> {
    for (const id of keyIds) {
      try {
        await this.#deps.files.remove(id);
      } catch (err) {
        this.#deps.logger.error({ err, key_id: id }, 'removing a private key file failed');
      }
    }
  }
}

/** An integer duration in [min, max] ms: VALIDATION_FAILED below or not an integer, LIMIT_OUT_OF_RANGE above. */
function duration(name: string, value: number, min: number, max: number): number {
  if (!Number.isSafeInteger(value) || value < min) {
    throw new FaasError('VALIDATION_FAILED', `${name} must be an integer number of milliseconds >= ${min}`, { errors: [{ path: `/${name}`, message: `must be an integer >= ${min}` }] });
  }
  if (value > max) throw new FaasError('LIMIT_OUT_OF_RANGE', `${name} ${value} is above the server's maximum ${max}`, { limit: name, value, min, max });
  return value;
}
