import { SESSION_WORKING_DIR } from './instance-access.ts';

/**
 * OpenSSH's sftp-server (Debian package openssh-sftp-server), as the instance sees it: the
 * host's /usr is bound read-only into every instance, so the same binary is there.
 */
export const SFTP_SERVER = '/usr/lib/openssh/sftp-server';

/**
 * SFTP (and `scp` of OpenSSH 9, which speaks SFTP) is served by running sftp-server INSIDE the
 * instance, as the sandbox user, with its stdin and stdout piped to the channel. Confinement
 * is then the sandbox's, not a path check of ours: the process sees only the instance's
 * mount namespace, so `..` past /, absolute paths and symlinks to /etc/shadow all resolve in
 * the instance's tree, and files it writes belong to the sandbox user. No path translation
 * happens in the gateway, so there is nothing here to get wrong.
 *
 * `-d`: relative paths start in the working dir every faas process starts in.
 * `-e`: its log lines go to stderr (there is no syslog in an instance), which ssh2 sends to
 * the client as extended data; `-l ERROR` keeps that to real problems.
 */
export function sftpServerArgv(): string[] {
  return [SFTP_SERVER, '-e', '-l', 'ERROR', '-d', SESSION_WORKING_DIR];
}
