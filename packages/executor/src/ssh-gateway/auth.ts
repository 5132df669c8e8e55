import { FaasError, IdPattern } from '@faas/protocol';
import type { Logger } from 'pino';
import ssh2, { type AuthContext, type PublicKeyAuthContext } from 'ssh2';
import type { AddressLimiter } from './address-limiter.ts';
import { fingerprintOf } from './host-key.ts';

import type { SshKeyCheck, SshLoginAttempt as LoginAttempt } from '../services/ssh-key-service.ts';

export type { SshKeyCheck, LoginAttempt };

/**
 * The part of the key service the gateway depends on: whether a key may log in to an instance
 * (pure: it records nothing), and the audit trail of attempts. An interface, not the class, so
 * the gateway is tested with a stand-in and the key service stays free to change inside.
 */
export interface SshAuthority {
  check(instanceId: string, keyBlob: Buffer): Promise<SshKeyCheck>;
  recordLoginAttempt(attempt: LoginAttempt): Promise<void>;
}

/** Who a connection logged in as; set once authentication succeeded. */
export interface SshLogin {
  instanceId: string;
  keyId: string;
  fingerprint: string;
}

export interface ConnectionAuthOptions {
  authority: SshAuthority;
  limiter: AddressLimiter;
  /** The client's IP address: what the back-off is counted by. */
  clientAddress: string;
  /** The client's port: audited with the address, so one connection's attempts can be told apart. */
  clientPort: number;
  /** Failed attempts allowed on one connection before it is dropped (sshd's MaxAuthTries). */
  maxFailures: number;
  logger: Logger;
  /** Counts outcomes (metrics). */
  onOutcome?: (success: boolean) => void;
  /** Called when the connection must be dropped: its budget is spent or its address is backing off. */
  onExhausted: (why: string) => void;
}

const USERNAME = new RegExp(IdPattern);
/** Only publickey is ever offered: the list a refusal advertises. */
const METHODS: ['publickey'] = ['publickey'];

/**
 * Authentication of one SSH connection: the user name is the instance id, the only method is
 * publickey, and the key service decides which keys are live for that instance.
 *
 * OpenSSH first offers a key without a signature (a query: "would you take this key?"); only
 * on yes does it sign. A query is answered from `check()` and recorded only when refused (a
 * yes is not yet a login). A signed request is checked again (the key may have been revoked
 * in between) and its signature verified over this session's id; that outcome is recorded.
 */
export class ConnectionAuth {
  private failures = 0;
  private exhausted = false;
  login: SshLogin | undefined;

  constructor(private readonly options: ConnectionAuthOptions) {}

  /** ssh2's `authentication` event. Never throws: every path ends in accept() or reject(). */
  handle(ctx: AuthContext): void {
    void this.decide(ctx).catch((err: unknown) => {
      this.options.logger.error({ err }, 'ssh authentication failed unexpectedly');
      ctx.reject(METHODS);
    });
  }

  private async decide(ctx: AuthContext): Promise<void> {
    const { limiter, clientAddress } = this.options;
    if (this.exhausted) return ctx.reject(METHODS);
    const wait = limiter.retryAfterMs(clientAddress);
    if (wait > 0) {
      ctx.reject(METHODS);
      this.exhaust(`address backing off for ${wait} ms after repeated failures`);
      return;
    }
    // OpenSSH starts with "none" to learn the methods: an answer, not a failed attempt.
    if (ctx.method === 'none') return ctx.reject(METHODS);
    if (ctx.method !== 'publickey') {
      // Never offered; a client that tries anyway spends its budget like a bad key.
      return this.refuse(ctx, { instanceId: ctx.username, keyId: null, fingerprint: null, reason: 'method_not_allowed', audit: USERNAME.test(ctx.username) });
    }
    await this.decidePublicKey(ctx);
  }

  private async decidePublicKey(ctx: PublicKeyAuthContext): Promise<void> {
    const instanceId = ctx.username;
    const fingerprint = fingerprintOf(ctx.key.data);
    // No instance can have such a name: refuse without asking the key service (or auditing junk).
    if (!USERNAME.test(instanceId)) return this.refuse(ctx, { instanceId, keyId: null, fingerprint, reason: 'unknown_instance', audit: false });
    // SHA-1 RSA signatures ("ssh-rsa") are refused, as by OpenSSH >= 8.8; clients use rsa-sha2-*.
    if (ctx.key.algo === 'ssh-rsa' && ctx.hashAlgo === undefined) {
      return this.refuse(ctx, { instanceId, keyId: null, fingerprint, reason: 'weak_signature_algorithm', audit: true });
    }
    const check = await this.checkKey(instanceId, ctx.key.data, fingerprint);
    if (!check.ok) return this.refuse(ctx, { instanceId, keyId: null, fingerprint: check.fingerprint, reason: check.reason, audit: check.reason !== 'unknown_instance' });
    if (ctx.signature === undefined || ctx.blob === undefined) {
      ctx.accept(); // the query's yes: the client signs next
      return;
    }
    if (!verifySignature(ctx)) return this.refuse(ctx, { instanceId, keyId: check.keyId, fingerprint: check.fingerprint, reason: 'bad_signature', audit: true });
    this.login = { instanceId, keyId: check.keyId, fingerprint: check.fingerprint };
    this.options.limiter.recordSuccess(this.options.clientAddress);
    this.options.onOutcome?.(true);
    await this.audit({ instanceId, keyId: check.keyId, fingerprint: check.fingerprint, success: true, method: 'publickey' });
    this.options.logger.info({ instance: instanceId, key: check.keyId, fingerprint: check.fingerprint, client: this.options.clientAddress }, 'ssh login');
    ctx.accept();
  }

  /** The key service's verdict; an instance it does not know is a refusal like any other. */
  private async checkKey(instanceId: string, blob: Buffer, fingerprint: string): Promise<SshKeyCheck | { ok: false; fingerprint: string; reason: 'unknown_instance' }> {
    try {
      return await this.options.authority.check(instanceId, blob);
    } catch (err) {
      if (err instanceof FaasError && err.code === 'INSTANCE_NOT_FOUND') return { ok: false, fingerprint, reason: 'unknown_instance' };
      throw err;
    }
  }

  private async refuse(ctx: AuthContext, r: { instanceId: string; keyId: string | null; fingerprint: string | null; reason: string; audit: boolean }): Promise<void> {
    const { limiter, clientAddress, maxFailures, logger } = this.options;
    this.failures++;
    // One mark per connection, not per key: a user whose agent offers five keys before the right
    // one is not a guesser. Guessers are bounded by maxFailures per connection times this.
    if (this.failures === 1) limiter.recordFailure(clientAddress);
    this.options.onOutcome?.(false);
    logger.info({ instance: r.instanceId, fingerprint: r.fingerprint, reason: r.reason, method: ctx.method, client: clientAddress, failures: this.failures }, 'ssh login refused');
    if (r.audit) await this.audit({ instanceId: r.instanceId, keyId: r.keyId, fingerprint: r.fingerprint, success: false, reason: r.reason, method: ctx.method });
    ctx.reject(METHODS);
    if (this.failures >= maxFailures) this.exhaust(`${this.failures} failed authentication attempts`);
  }

  private exhaust(why: string): void {
    if (this.exhausted) return;
    this.exhausted = true;
    this.options.onExhausted(why);
  }

  /** Audit failures must not decide a login (nor crash the gateway): they are logged. */
  private async audit(a: Omit<LoginAttempt, 'clientAddress'>): Promise<void> {
    try {
      const { clientAddress, clientPort } = this.options;
      const host = clientAddress.includes(':') ? `[${clientAddress}]` : clientAddress;
      await this.options.authority.recordLoginAttempt({ ...a, clientAddress: `${host}:${clientPort}` });
    } catch (err) {
      this.options.logger.warn({ err, instance: a.instanceId }, 'recording an ssh login attempt failed');
    }
  }
}

/**
 * The client's signature over the session id and its request (ssh2 builds `blob`), with the
 * key it offered. The offered algorithm must be the key's own type: a blob of one type signed
 * "as" another must not pass.
 */
function verifySignature(ctx: PublicKeyAuthContext): boolean {
  const parsed = ssh2.utils.parseKey(ctx.key.data);
  const key = Array.isArray(parsed) ? parsed[0] : parsed;
  if (key === undefined || key instanceof Error || key.type !== ctx.key.algo) return false;
  try {
    return key.verify(ctx.blob!, ctx.signature!, ctx.hashAlgo) === true;
  } catch {
    return false;
  }
}
