#!/bin/sh
# Installs the Debian packages faas needs at run time when they are missing and we are root.
# Without root it only reports what is missing; `faas serve` then fails with the same names.
set -eu
need=""
command -v bwrap >/dev/null 2>&1 || need="$need bubblewrap"
command -v nsenter >/dev/null 2>&1 || need="$need util-linux"
command -v setpriv >/dev/null 2>&1 || need="$need util-linux"
[ -x /usr/bin/env ] || need="$need coreutils"
# The SSH gateway serves SFTP (and so scp) by running OpenSSH's sftp-server inside the instance.
[ -x /usr/lib/openssh/sftp-server ] || need="$need openssh-sftp-server"
# `npm run bench`: everything the tests use (its sections start sandboxes and VMs with the
# same tools), plus the baselines it measures against.
if [ "${FAAS_WITH_BENCH_PACKAGES:-0}" = 1 ]; then
  FAAS_WITH_TEST_PACKAGES=1
  command -v rsync >/dev/null 2>&1 || need="$need rsync"
  command -v sha256sum >/dev/null 2>&1 || need="$need coreutils"
  command -v diff >/dev/null 2>&1 || need="$need diffutils"
fi
# Used by tests and by the tour (curl and python3 inside sandboxes).
if [ "${FAAS_WITH_TEST_PACKAGES:-0}" = 1 ]; then
  command -v python3 >/dev/null 2>&1 || need="$need python3"
  command -v curl >/dev/null 2>&1 || need="$need curl"
  command -v ps >/dev/null 2>&1 || need="$need procps"
  # The sync filter tests compare with git's own gitignore handling.
  command -v git >/dev/null 2>&1 || need="$need git"
  # The SSH tests drive the real OpenSSH client (ssh, scp, sftp, ssh-keygen).
  command -v ssh >/dev/null 2>&1 || need="$need openssh-client"
fi
# The vm runtime (`faas serve --runtime vm`) and its tests: QEMU, the guest kernel, busybox for
# the guest's initramfs, and the tools that build the guest image.
if [ "${FAAS_RUNTIME:-}" = vm ] || [ "${FAAS_WITH_TEST_PACKAGES:-0}" = 1 ]; then
  command -v qemu-system-x86_64 >/dev/null 2>&1 || need="$need qemu-system-x86"
  ls /boot/vmlinuz-*-cloud-amd64 >/dev/null 2>&1 || need="$need linux-image-cloud-amd64"
  [ -x /bin/busybox ] || need="$need busybox-static"
  command -v cpio >/dev/null 2>&1 || need="$need cpio"
  command -v mke2fs >/dev/null 2>&1 || need="$need e2fsprogs"
fi
# npm ci builds better-sqlite3 from source when no prebuilt binary can be fetched.
if [ "${FAAS_WITH_BUILD_TOOLS:-0}" = 1 ]; then
  command -v g++ >/dev/null 2>&1 || need="$need g++"
  command -v make >/dev/null 2>&1 || need="$need make"
  command -v python3 >/dev/null 2>&1 || need="$need python3"
fi
need=$(printf '%s\n' $need | sort -u | tr '\n' ' ')
if [ -z "${need# }" ]; then exit 0; fi
if [ "$(id -u)" != 0 ]; then
  echo "faas: missing system packages:$need(run as root: apt-get install -y$need)" >&2
  exit 1
fi
echo "faas: installing system packages:$need" >&2
export DEBIAN_FRONTEND=noninteractive
apt-get install -y --no-install-recommends $need >/dev/null 2>&1 || { apt-get update >/dev/null && apt-get install -y --no-install-recommends $need; }
