/**
 * Failures of the SSH gateway itself. They never reach the HTTP API (an SSH client sees a
 * refused login, a failed channel or a disconnect); they name what went wrong in logs and in
 * the start-up error. Codes are stable, like the API's: monitoring may match on them.
 */
export const SshGatewayErrorCode = {
  /** `<dataDir>/ssh/host_ed25519_key` exists but is not a readable OpenSSH Ed25519 private key. */
  HOST_KEY_INVALID: 'SSH_HOST_KEY_INVALID',
  /** The gateway could not listen on its address and port (in use, not permitted). */
  LISTEN_FAILED: 'SSH_LISTEN_FAILED',
  /** A client did not finish the handshake and authentication in the time allowed. */
  HANDSHAKE_TIMEOUT: 'SSH_HANDSHAKE_TIMEOUT',
  /** A connection passed its failed-authentication budget, or its address is backing off. */
  AUTH_LIMIT: 'SSH_AUTH_LIMIT',
  /** A session or forwarding could not be started in the instance. */
  CHANNEL_FAILED: 'SSH_CHANNEL_FAILED',
} as const;

export type SshGatewayErrorCode = (typeof SshGatewayErrorCode)[keyof typeof SshGatewayErrorCode];

export class SshGatewayError extends Error {
  override readonly name = 'SshGatewayError';

  constructor(
    readonly code: SshGatewayErrorCode,
    message: string,
    readonly details: Record<string, unknown> = {},
    options?: { cause?: unknown },
  ) {
    super(message, options);
  }
}
