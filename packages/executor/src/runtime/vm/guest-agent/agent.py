#!/usr/bin/env python3
"""faas guest agent: runs inside the instance VM (as PID 1) and serves the host.

One virtio-serial port carries a multiplexed framed protocol (CONTRACT.md, "Agent
protocol"): channel 0 is control, every exec and every TCP connection gets a channel of its
own. Everything runs on one selectors loop with non-blocking fds, so no channel can stall
another; memory is bounded by per-stream credit windows.

Kept in one file (stdlib only) because the image ships it as /usr/lib/faas/agent.py and runs
it with `python3 -I`, which puts no script directory on sys.path.
"""

import argparse
import errno
import fcntl
import heapq
import ipaddress
import json
import os
import select
import selectors
import signal
import socket
import struct
import sys
import termios
import time
import traceback

VERSION = 1
PORT_NAME = 'org.faas.agent.0'

HELLO, HELLO_OK, PING, PONG, FS_FREEZE, FS_THAW, FS_OK, FS_ERROR, ERROR = range(0x01, 0x0A)
EXEC, STARTED, EXEC_FAILED, STDIN, STDIN_EOF, STDOUT, STDERR, PROGRESS, SIGNAL, RESIZE, EXIT = range(0x10, 0x1B)
CONNECT, CONNECTED, CONNECT_FAILED, DATA, EOF, CLOSE = range(0x20, 0x26)
CREDIT = 0x30

HEADER = struct.Struct('>IBI')  # length (of type + channel + payload), type, channel
CREDIT_BODY = struct.Struct('>BI')  # type of the credited data frames, bytes
MAX_PAYLOAD = 1 << 20
WINDOW = 256 * 1024
CHUNK = 64 * 1024
# Give receive credit back in batches, not per write: fewer frames, and the sender still
# holds at least 3/4 of its window at any moment.
GRANT_BATCH = WINDOW // 4
# Stop reading process output while this much is queued for the host (however many channels).
OUT_HIGH = 1 << 20
OUT_LOW = 256 * 1024
QUIET_AFTER_EXIT = 0.025
RECONNECT_POLL = 0.02
MAX_PROGRESS_LINE = 4096
# The HELLO frame's type + channel 0 + the opening brace of its JSON: what we scan for to find
# a frame boundary again after a reconnect or a framing error.
HELLO_MARK = bytes([HELLO, 0, 0, 0, 0]) + b'{'

FIFREEZE, FITHAW = 0xC0045877, 0xC0045878
CGROUP_ROOT = '/sys/fs/cgroup'
# Python ignores these itself (and we ignore TERM/INT as PID 1); ignored dispositions survive
# exec, so a child would not die of them.
RESET_SIGNALS = (signal.SIGPIPE, signal.SIGXFSZ, signal.SIGTERM, signal.SIGINT, signal.SIGCHLD)


def log(message):
    try:
        sys.stderr.write('faas-agent: %s\n' % message)
        sys.stderr.flush()
    except OSError:
        pass


def log_exception(where):
    log('%s failed:\n%s' % (where, traceback.format_exc()))


class Loop:
    """selectors + a timer heap. A failing callback is logged and never ends the loop."""

    def __init__(self):
        self.selector = selectors.DefaultSelector()
        self.timers = []
        self.seq = 0

    def watch(self, fd, events, handler):
        """Sets the interest of `fd` (0 = none). handler(mask) runs when it is ready."""
        key = self.selector.get_map().get(fd)
        if events == 0:
            if key is not None:
                self.selector.unregister(fd)
        elif key is None:
            self.selector.register(fd, events, handler)
        elif key.events != events or key.data != handler:
            self.selector.modify(fd, events, handler)

    def call_later(self, delay, callback):
        """Returns a list whose first item set to None cancels the call."""
        self.seq += 1
        entry = [callback]
        heapq.heappush(self.timers, (time.monotonic() + delay, self.seq, entry))
        return entry

    def run_forever(self):
        while True:
            try:
                self._run_once()
            except Exception:
                log_exception('event loop')

    def _run_once(self):
        timeout = None
        if self.timers:
            timeout = max(0.0, self.timers[0][0] - time.monotonic())
        for key, mask in self.selector.select(timeout):
            guarded(key.data, mask)
        now = time.monotonic()
        while self.timers and self.timers[0][0] <= now:
            callback = heapq.heappop(self.timers)[2][0]
            if callback is not None:
                guarded(callback)


def guarded(callback, *args):
    try:
        callback(*args)
    except Exception:
        log_exception(getattr(callback, '__qualname__', 'callback'))


class Transport:
    """The byte stream to the host: opens it, frames it, and notices when the host goes away.

    `opener` hides the difference between the virtio port (stays open, poll for the host) and
    a unix socket (tests: reconnect to the path).
    """

    def __init__(self, loop, opener, on_frame, on_lost, on_drained):
        self.loop = loop
        self.opener = opener
        self.on_frame = on_frame
        self.on_lost = on_lost
        self.on_drained = on_drained
        self.fd = None
        self.inbuf = bytearray()
        self.out = bytearray()
        self.synced = False  # false: discard input until a HELLO frame starts
        # Set above OUT_HIGH queued bytes, cleared at OUT_LOW: while set, sources do not read.
        self.congested = False
        self._attempt()

    def send(self, ftype, channel, payload=b''):
        if self.fd is None:
            return
        self.out += HEADER.pack(5 + len(payload), ftype, channel)
        self.out += payload
        if len(self.out) > OUT_HIGH:
            self.congested = True
        self._flush()

    def send_json(self, ftype, channel, body):
        self.send(ftype, channel, json.dumps(body, separators=(',', ':')).encode())

    def resync(self, reason):
        """Framing is lost: tell the host (it should reconnect) and wait for the next HELLO."""
        log('protocol error, waiting for HELLO: %s' % reason)
        self.send_json(ERROR, 0, {'message': reason})
        self.synced = False

    def drop_output(self):
        """Forgets output of a previous host connection: a new host must not see its tail."""
        self.out.clear()
        self._flush()

    def _attempt(self):
        fd = self.opener.try_open()
        if fd is None:
            self.loop.call_later(RECONNECT_POLL, self._attempt)
            return
        self.fd = fd
        self.synced = False
        self._watch()

    def _lost(self, reason):
        log('host connection lost (%s)' % reason)
        self.loop.watch(self.fd, 0, None)
        self.opener.release(self.fd)
        self.fd = None
        self.inbuf.clear()
        self.out.clear()
        self.congested = False
        self.on_lost()
        self.loop.call_later(RECONNECT_POLL, self._attempt)

    def _watch(self):
        if self.fd is not None:
            events = selectors.EVENT_READ | (selectors.EVENT_WRITE if self.out else 0)
            self.loop.watch(self.fd, events, self._on_ready)

    def _on_ready(self, mask):
        if self.fd is None:
            return
        if mask & selectors.EVENT_WRITE:
            self._flush()
        if self.fd is not None and mask & selectors.EVENT_READ:
            self._read()

    def _read(self):
        try:
            data = os.read(self.fd, CHUNK)
        except BlockingIOError:
            return
        except OSError as e:
            self._lost(os.strerror(e.errno))
            return
        if not data:
            self._lost('end of stream')
            return
        self.inbuf += data
        self._parse()

    def _parse(self):
        while self.fd is not None:
            if not self.synced and not self._find_hello():
                return
            if len(self.inbuf) < HEADER.size:
                return
            length, ftype, channel = HEADER.unpack_from(self.inbuf)
            if length < 5 or length - 5 > MAX_PAYLOAD:
                del self.inbuf[:1]
                self.resync('bad frame length %d' % length)
                continue
            if len(self.inbuf) < 4 + length:
                return
            payload = bytes(self.inbuf[HEADER.size:4 + length])
            del self.inbuf[:4 + length]
            guarded(self._dispatch, ftype, channel, payload)

    def _dispatch(self, ftype, channel, payload):
        try:
            self.on_frame(ftype, channel, payload)
        except (ValueError, KeyError, TypeError, struct.error) as e:
            # A malformed payload (bad JSON, missing field): drop the frame, keep the stream.
            log('frame type %d on channel %d dropped: %s: %s' % (ftype, channel, type(e).__name__, e))

    def _find_hello(self):
        """Drops input up to the next plausible HELLO frame; true once one starts the buffer."""
        at = self.inbuf.find(HELLO_MARK, 4)
        if at < 0:
            del self.inbuf[:max(0, len(self.inbuf) - len(HELLO_MARK) - 4)]
            return False
        del self.inbuf[:at - 4]
        self.synced = True
        return True

    def _flush(self):
        while self.out and self.fd is not None:
            try:
                n = os.write(self.fd, self.out[:CHUNK])
            except BlockingIOError:
                break
            except OSError as e:
                self._lost(os.strerror(e.errno))
                return
            del self.out[:n]
        self._watch()
        if self.congested and len(self.out) <= OUT_LOW:
            self.congested = False
            self.on_drained()


class PortOpener:
    """The virtio-serial port. It stays open; while no host is connected it polls POLLHUP."""

    def __init__(self):
        self.fd = None

    def try_open(self):
        if self.fd is None:
            path = find_port()
            if path is None:
                return None
            self.fd = os.open(path, os.O_RDWR | os.O_NONBLOCK | os.O_CLOEXEC)
        poller = select.poll()
        poller.register(self.fd, select.POLLIN)
        events = dict(poller.poll(0)).get(self.fd, 0)
        if events & select.POLLHUP and not events & select.POLLIN:
            return None
        return self.fd

    def release(self, fd):
        pass


class SocketOpener:
    """Tests: a unix socket the host test listens on; its end of stream means a disconnect."""

    def __init__(self, path):
        self.path = path

    def try_open(self):
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            sock.connect(self.path)
        except OSError:
            sock.close()
            return None
        sock.setblocking(False)
        return sock.detach()

    def release(self, fd):
        os.close(fd)


def find_port():
    base = '/sys/class/virtio-ports'
    try:
        names = os.listdir(base)
    except OSError:
        return None
    for name in names:
        try:
            with open(os.path.join(base, name, 'name')) as f:
                if f.read().strip() == PORT_NAME:
                    return '/dev/' + name
        except OSError:
            continue
    return None


class Source:
    """Reads one fd and hands on what it reads, within the credit the host granted.

    Without credit it stops reading, so the writer blocks as it would on a full pipe. Once
    `discard` is set (host gone, or the exec finished) it drains and drops everything, so a
    process whose output nobody wants never blocks.
    """

    def __init__(self, agent, fd, on_data, on_eof, credited=True):
        self.agent = agent
        self.fd = fd
        self.on_data = on_data
        self.on_eof = on_eof
        self.credit = WINDOW if credited else None
        self.discard = False
        os.set_blocking(fd, False)
        agent.sources.add(self)
        self.refresh()

    @property
    def blocked(self):
        if self.fd is None or self.discard:
            return False
        return self.credit == 0 or self.agent.transport.congested

    def grant(self, n):
        if self.credit is not None:
            self.credit += n
            self.refresh()

    def drain_and_drop(self):
        self.discard = True
        self.refresh()

    def refresh(self):
        if self.fd is not None:
            self.agent.loop.watch(self.fd, 0 if self.blocked else selectors.EVENT_READ, self._on_ready)

    def close(self):
        if self.fd is not None:
            self.agent.loop.watch(self.fd, 0, None)
            os.close(self.fd)
            self.fd = None
            self.agent.sources.discard(self)

    def _on_ready(self, _mask):
        if self.fd is None:
            return
        if self.blocked:
            self.refresh()  # level-triggered: stop watching until credit or room comes
            return
        size = CHUNK if self.discard or self.credit is None else min(CHUNK, self.credit)
        try:
            data = os.read(self.fd, size)
        except BlockingIOError:
            return
        except OSError as e:
            # EIO: a pty master whose slave side is closed everywhere. ECONNRESET: a socket.
            if e.errno not in (errno.EIO, errno.ECONNRESET):
                raise
            data = b''
        if not data:
            self.close()
            self.on_eof()
            return
        if self.discard:
            return
        if self.credit is not None:
            self.credit -= len(data)
        self.on_data(data)
        if self.blocked:
            self.refresh()


class Sink:
    """Writes what the host sends to one fd and gives credit back as the fd takes it.

    Holds at most one window (the host never sends more). A reader that went away (EPIPE)
    turns the rest into a no-op that still grants credit, so the host's writer never hangs.
    After end(), once everything is written, the fd is closed and `on_end` runs.
    """

    def __init__(self, agent, fd, grant, on_end=None):
        self.agent = agent
        self.fd = fd
        self.grant = grant
        self.on_end = on_end
        self.pending = bytearray()
        self.ungranted = 0
        self.ending = False
        os.set_blocking(fd, False)

    def write(self, data):
        if self.fd is None or self.ending or len(self.pending) + len(data) > WINDOW:
            if self.fd is not None:
                log('host wrote past its credit or its end; %d bytes dropped' % len(data))
            self.grant(len(data))
            return
        self.pending += data
        self._flush()

    def end(self):
        if not self.ending:
            self.ending = True
            self._flush()

    def close(self):
        if self.fd is not None:
            self.agent.loop.watch(self.fd, 0, None)
            os.close(self.fd)
            self.fd = None
        self.pending.clear()

    def _flush(self, _mask=0):
        while self.pending and self.fd is not None:
            try:
                n = os.write(self.fd, self.pending[:CHUNK])
            except BlockingIOError:
                break
            except OSError as e:
                if e.errno not in (errno.EPIPE, errno.EIO, errno.ECONNRESET):
                    raise
                self.ungranted += len(self.pending)
                self.close()
                break
            del self.pending[:n]
            self.ungranted += n
        if self.ungranted and (self.ungranted >= GRANT_BATCH or not self.pending):
            self.grant(self.ungranted)
            self.ungranted = 0
        if self.pending:
            self.agent.loop.watch(self.fd, selectors.EVENT_WRITE, self._flush)
        elif self.ending:
            self.close()
            if self.on_end is not None:
                on_end, self.on_end = self.on_end, None
                on_end()
        elif self.fd is not None:
            self.agent.loop.watch(self.fd, 0, None)


class Cgroup:
    """One cgroup v2 directory; every method tolerates the group having gone."""

    def __init__(self, path):
        self.path = path

    def _write(self, name, value):
        with open(os.path.join(self.path, name), 'w') as f:
            f.write(value)

    def join(self):
        self._write('cgroup.procs', '0')

    def pids(self):
        try:
            with open(os.path.join(self.path, 'cgroup.procs')) as f:
                return [int(line) for line in f if line.strip()]
        except OSError:
            return []

    def signal(self, signum):
        if signum == signal.SIGKILL:
            try:
                self._write('cgroup.kill', '1')  # the whole tree, atomically, even forking ones
                return
            except OSError:
                pass
        for pid in self.pids():
            try:
                os.kill(pid, signum)
            except ProcessLookupError:
                pass

    def oom_kills(self):
        try:
            with open(os.path.join(self.path, 'memory.events')) as f:
                for line in f:
                    key, _, value = line.partition(' ')
                    if key == 'oom_kill':
                        return int(value)
        except OSError:
            pass
        return 0

    def remove(self):
        """True when the group is gone (rmdir fails while processes are left in it)."""
        try:
            os.rmdir(self.path)
            return True
        except FileNotFoundError:
            return True
        except OSError:
            return False


class Cgroups:
    """The instance group /sys/fs/cgroup/faas (limits from HELLO) and one child per exec."""

    def __init__(self, enabled):
        self.base = os.path.join(CGROUP_ROOT, 'faas') if enabled and os.path.exists(os.path.join(CGROUP_ROOT, 'cgroup.controllers')) else None
        self.leftovers = []  # finished execs' groups that still held processes
        if self.base:
            try:
                enable_controllers(CGROUP_ROOT)
                os.makedirs(self.base, exist_ok=True)
                enable_controllers(self.base)
            except OSError:
                log_exception('cgroup setup')
                self.base = None

    def apply_limits(self, limits):
        if not self.base or not limits:
            return
        settings = {
            'memory.max': str(int(limits['memory_mb']) * 1024 * 1024),
            'pids.max': str(int(limits['pids_max'])),
            'cpu.max': '%d 100000' % max(1000, int(float(limits['cpu_cores']) * 100000)),
        }
        for name, value in settings.items():
            try:
                Cgroup(self.base)._write(name, value)
            except OSError as e:
                log('cannot set %s: %s' % (name, e))

    def create(self, name):
        if not self.base:
            return None
        path = os.path.join(self.base, name)
        os.makedirs(path, exist_ok=True)
        return Cgroup(path)

    def release(self, group):
        if group is not None and not group.remove():
            self.leftovers.append(group)

    def retry_leftovers(self):
        self.leftovers = [g for g in self.leftovers if not g.remove()]


def enable_controllers(path):
    with open(os.path.join(path, 'cgroup.controllers')) as f:
        available = f.read().split()
    wanted = ' '.join('+' + c for c in ('memory', 'pids', 'cpu') if c in available)
    if wanted:
        with open(os.path.join(path, 'cgroup.subtree_control'), 'w') as f:
            f.write(wanted)


def validate_exec(spec):
    argv, env = spec.get('argv'), spec.get('env')
    if not isinstance(argv, list) or not argv or not all(isinstance(a, str) for a in argv):
        raise ValueError('argv must be a non-empty list of strings')
    if not isinstance(env, dict) or not all(isinstance(k, str) and isinstance(v, str) for k, v in env.items()):
        raise ValueError('env must map strings to strings')
    for key in ('uid', 'gid'):
        if not isinstance(spec.get(key), int):
            raise ValueError('%s must be an integer' % key)
    if not isinstance(spec.get('cwd'), str):
        raise ValueError('cwd must be a string')


def spawn(spec, group, pty):
    """Forks and execs the command. Returns (pid, fds, error_fd).

    fds: 'stdin' (ours to write), 'stdout', 'stderr', 'progress' (ours to read; absent when
    not used), 'master' with a pty. error_fd reports a failure before exec ("stage:errno:text")
    and reads end-of-file once exec succeeded (it is close-on-exec).
    """
    ours, theirs = {}, {}
    if pty:
        master, slave = os.openpty()
        fcntl.ioctl(master, termios.TIOCSWINSZ, struct.pack('HHHH', pty['rows'], pty['cols'], 0, 0))
        ours['master'] = master
        theirs.update({0: slave, 1: slave, 2: slave})
    else:
        for target, name in ((0, 'stdin'), (1, 'stdout'), (2, 'stderr')):
            r, w = os.pipe()
            ours[name], theirs[target] = (w, r) if target == 0 else (r, w)
    if spec.get('progress'):
        ours['progress'], theirs[3] = os.pipe()
    err_r, err_w = os.pipe()
    try:
        pid = os.fork()
    except OSError:
        for fd in {*ours.values(), *theirs.values(), err_r, err_w}:
            os.close(fd)
        raise
    if pid == 0:
        run_child(spec, group, theirs, pty is not None, err_w)
    os.close(err_w)
    for fd in set(theirs.values()):
        os.close(fd)
    return pid, ours, err_r


def run_child(spec, group, fds, has_pty, err_w):
    """In the forked child: never returns."""
    stage = 'spawn'
    try:
        err_w = fcntl.fcntl(err_w, fcntl.F_DUPFD_CLOEXEC, 10)  # out of the way of fds 0..3
        for signum in RESET_SIGNALS:
            signal.signal(signum, signal.SIG_DFL)
        os.setsid()
        if group is not None:
            group.join()  # before dropping root: cgroup.procs is root's to write
        if has_pty:
            fcntl.ioctl(fds[0], termios.TIOCSCTTY, 0)
        if os.geteuid() == 0:
            os.setgroups([])
            os.setgid(spec['gid'])
            os.setuid(spec['uid'])
        stage = 'cwd'
        os.chdir(spec['cwd'])
        # Lift every fd above the targets first so a dup2 cannot overwrite one still needed.
        high = {target: fcntl.fcntl(fd, fcntl.F_DUPFD_CLOEXEC, 10) for target, fd in fds.items()}
        for target, fd in high.items():
            os.dup2(fd, target)
        keep = max(fds) + 1
        os.closerange(keep, err_w)
        os.closerange(err_w + 1, os.sysconf('SC_OPEN_MAX'))
        stage = 'exec'
        argv = spec['argv']
        os.execvpe(argv[0], argv, spec['env'])
    except OSError as e:
        os.write(err_w, ('%s:%d:%s' % (stage, e.errno or 0, e.strerror or e)).encode())
    except BaseException as e:
        os.write(err_w, ('spawn:0:%s' % e).encode())
    finally:
        os._exit(127)


def exec_failure(report, argv0, cwd):
    """EXEC_FAILED body from the child's "stage:errno:text" report."""
    stage, err, text = report.decode(errors='replace').split(':', 2)
    err = int(err)
    if stage == 'cwd':
        return {'code': 'INVALID_CWD', 'message': '%s: %s' % (cwd, text)}
    if stage == 'exec' and err in (errno.ENOENT, errno.ENOTDIR):
        return {'code': 'COMMAND_NOT_FOUND', 'message': '%s: command not found' % argv0}
    if stage == 'exec' and err in (errno.EACCES, errno.EPERM):
        return {'code': 'PERMISSION_DENIED', 'message': '%s: %s' % (argv0, text)}
    return {'code': 'SPAWN_FAILED', 'message': text}


class ExecChannel:
    """One exec: its process tree, its streams, and the EXIT rule.

    EXIT goes out once the main process has exited and its output is read: to end of stream,
    or, while processes it left in the background still hold the streams, until they have been
    quiet for 25 ms (as bwrap-process.ts). After that the channel is closed and whatever the
    background writes is drained and dropped.
    """

    def __init__(self, agent, channel, spec):
        validate_exec(spec)
        self.agent = agent
        self.channel = channel
        self.detached = False
        self.finished = False
        self.started = False
        self.failure = b''
        self.status = None
        self.exited_at = None
        self.last_data = time.monotonic()
        self.check_timer = None
        pty = spec.get('pty')
        env = dict(spec['env'])
        if pty and pty.get('term'):
            env['TERM'] = pty['term']
        self.pty = pty is not None
        self.argv0 = spec['argv'][0]
        self.cwd = spec['cwd']
        self.group = agent.cgroups.create('x%d-%d' % (agent.generation, channel))
        self.spawned_at = time.monotonic()
        try:
            self.pid, fds, err_fd = spawn(dict(spec, env=env), self.group, pty)
        except OSError:
            agent.cgroups.release(self.group)
            raise
        agent.processes[self.pid] = self
        # With a pty, output comes from the master and input goes to a duplicate of it (each
        # fd has one direction in the selector); stderr is merged by the terminal.
        out_fd = fds['master'] if self.pty else fds['stdout']
        in_fd = os.dup(fds['master']) if self.pty else fds['stdin']
        self.stdout = Source(agent, out_fd, self._output(STDOUT), self._check_done)
        self.stderr = None if self.pty else Source(agent, fds['stderr'], self._output(STDERR), self._check_done)
        self.progress = None
        if 'progress' in fds:
            lines = LineSplitter(self._progress_line)
            self.progress = Source(agent, fds['progress'], lines.feed, self._check_done, credited=False)
        self.stdin = Sink(agent, in_fd, lambda n: self._send(CREDIT, CREDIT_BODY.pack(STDIN, n)))
        self.spawn_report = Source(agent, err_fd, self._on_spawn_report, self._spawn_resolved, credited=False)

    def outputs(self):
        return [s for s in (self.stdout, self.stderr, self.progress) if s is not None]

    def on_frame(self, ftype, payload):
        if ftype == STDIN:
            self.stdin.write(payload)
        elif ftype == STDIN_EOF:
            if not self.pty:
                self.stdin.end()
            elif self.stdin.fd is not None:
                # A terminal has no end of input: type its EOF character (^D) instead.
                self.stdin.write(termios.tcgetattr(self.stdin.fd)[6][termios.VEOF])
        elif ftype == CREDIT:
            stream, n = CREDIT_BODY.unpack(payload)
            source = {STDOUT: self.stdout, STDERR: self.stderr}.get(stream)
            if source is not None:
                source.grant(n)
                self._check_done()
        elif ftype == SIGNAL:
            self.signal(signal.Signals[json.loads(payload)['signal']])
        elif ftype == RESIZE:
            size = json.loads(payload)
            if self.pty and self.stdin.fd is not None:
                fcntl.ioctl(self.stdin.fd, termios.TIOCSWINSZ, struct.pack('HHHH', size['rows'], size['cols'], 0, 0))
        else:
            log('exec channel %d: unexpected frame type %d' % (self.channel, ftype))

    def signal(self, signum):
        if self.group is not None:
            self.group.signal(signum)
            return
        try:
            os.killpg(self.pid, signum)
        except ProcessLookupError:
            pass

    def detach(self):
        """The host went away: the process runs on, its output is dropped, its stdin closed."""
        self.detached = True
        self.stdin.close()
        for source in self.outputs():
            source.drain_and_drop()

    def on_exit(self, status):
        self.status = status
        self.exited_at = time.monotonic()
        self._check_done()

    def _send(self, ftype, payload=b''):
        if not self.detached:
            self.agent.transport.send(ftype, self.channel, payload)

    def _send_json(self, ftype, body):
        self._send(ftype, json.dumps(body, separators=(',', ':')).encode())

    def _output(self, ftype):
        def deliver(data):
            self.last_data = time.monotonic()
            self._send(ftype, data)
        return deliver

    def _progress_line(self, line):
        self.last_data = time.monotonic()
        self._send(PROGRESS, line)

    def _on_spawn_report(self, data):
        self.failure = (self.failure + data)[:4096]

    def _spawn_resolved(self):
        """The child exec'd (report pipe closed empty) or said why it could not."""
        if self.failure:
            self._send_json(EXEC_FAILED, exec_failure(self.failure, self.argv0, self.cwd))
            self.agent.close_channel(self.channel, self)
            self.detached = True
            self.stdin.close()
            for source in self.outputs():
                source.close()
        else:
            self.started = True
            self._send_json(STARTED, {'pid': self.pid})
        self._check_done()

    def _group_busy(self):
        """Something other than the (exited) main process may still hold the streams."""
        if self.group is not None:
            return bool(self.group.pids())
        try:
            os.killpg(self.pid, 0)
            return True
        except ProcessLookupError:
            return False
        except PermissionError:
            return True

    def _check_done(self):
        if self.finished or self.status is None or self.spawn_report.fd is not None:
            return
        if not self.started:
            self._release()  # the spawn failed and was reported: only clean up
            return
        open_outputs = [s for s in self.outputs() if s.fd is not None]
        if open_outputs and self._group_busy():
            now = time.monotonic()
            if any(s.blocked for s in open_outputs):
                self.last_data = now  # waiting for the host's credit is not silence
            idle = now - max(self.last_data, self.exited_at)
            if idle < QUIET_AFTER_EXIT:
                self._recheck(QUIET_AFTER_EXIT - idle)
                return
        elif open_outputs:
            return  # every writer is gone: end of stream is imminent, read all of it
        self._finish()

    def _recheck(self, delay):
        if self.check_timer is not None:
            self.check_timer[0] = None
        self.check_timer = self.agent.loop.call_later(delay, self._check_done)

    def _finish(self):
        status = self.status
        self._send_json(EXIT, {
            'exit_code': os.WEXITSTATUS(status) if os.WIFEXITED(status) else None,
            'signal': signal.Signals(os.WTERMSIG(status)).name if os.WIFSIGNALED(status) else None,
            'oom_killed': self.group is not None and self.group.oom_kills() > 0,
            'duration_ms': round((self.exited_at - self.spawned_at) * 1000, 3),
        })
        if not self.detached:
            self.agent.close_channel(self.channel, self)
            self.detach()
        self._release()

    def _release(self):
        self.finished = True
        self.agent.cgroups.release(self.group)


class LineSplitter:
    """Progress lines: at most 4 KiB each (the rest of a longer line is dropped)."""

    def __init__(self, on_line):
        self.on_line = on_line
        self.pending = b''
        self.overflow = False

    def feed(self, data):
        parts = (self.pending + data).split(b'\n')
        self.pending = parts.pop()
        for part in parts:
            if not self.overflow:
                self.on_line(part[:MAX_PROGRESS_LINE])
            self.overflow = False
        if len(self.pending) > MAX_PROGRESS_LINE:
            if not self.overflow:
                self.on_line(self.pending[:MAX_PROGRESS_LINE])
            self.overflow = True
            self.pending = b''


class TcpChannel:
    """A TCP connection made inside the guest on the host's behalf (loopback or own address).

    Each direction ends on its own (EOF frames / shutdown); once both have, the agent sends
    CLOSE. Either side may CLOSE early to abort.
    """

    def __init__(self, agent, channel, request):
        self.agent = agent
        self.channel = channel
        self.source = None
        self.sink = None
        self.peer_done = False  # the guest peer closed its side (EOF sent to the host)
        self.host_done = False  # the host closed its side and it reached the peer
        address = local_address(request.get('host', '127.0.0.1'))
        port = request.get('port')
        if address is None or not isinstance(port, int) or not 0 < port < 65536:
            raise ConnectFailure('VALIDATION_FAILED', 'host must be a loopback or own address, port 1..65535')
        self.sock = socket.socket(socket.AF_INET6 if ':' in address else socket.AF_INET, socket.SOCK_STREAM)
        self.sock.setblocking(False)
        result = self.sock.connect_ex((address, port))
        if result not in (0, errno.EINPROGRESS):
            self.sock.close()
            raise connect_failure(result)
        agent.loop.watch(self.sock.fileno(), selectors.EVENT_WRITE, self._on_connect_ready)
        self.timer = agent.loop.call_later(request.get('timeout_ms', 5000) / 1000, self._on_timeout)

    def on_frame(self, ftype, payload):
        if ftype == CLOSE:
            self.close(notify=False)
        elif self.sink is None:
            log('tcp channel %d: frame type %d before CONNECTED' % (self.channel, ftype))
        elif ftype == DATA:
            self.sink.write(payload)
        elif ftype == EOF:
            self.sink.end()
        elif ftype == CREDIT:
            self.source.grant(CREDIT_BODY.unpack(payload)[1])
        else:
            log('tcp channel %d: unexpected frame type %d' % (self.channel, ftype))

    def detach(self):
        self.close(notify=False)

    def close(self, notify=True, error=None):
        """Ends the channel; `notify` sends CLOSE (with `error` when it broke)."""
        if self.sock.fileno() < 0:
            return
        self.timer[0] = None
        if self.source is not None:
            self.source.close()
            self.sink.close()
        else:
            self.agent.loop.watch(self.sock.fileno(), 0, None)
        self.sock.close()
        if self.agent.close_channel(self.channel, self) and notify:
            self.agent.transport.send_json(CLOSE, self.channel, {'error': error} if error else {})

    def _fail(self, failure):
        self.close(notify=False)
        self.agent.transport.send_json(CONNECT_FAILED, self.channel, {'code': failure.code, 'message': failure.message})

    def _on_timeout(self):
        self._fail(ConnectFailure('CONNECT_TIMEOUT', 'no connection within the timeout'))

    def _on_connect_ready(self, _mask):
        if self.sock.fileno() < 0 or self.source is not None:
            return
        result = self.sock.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR)
        if result != 0:
            self._fail(connect_failure(result))
            return
        self.timer[0] = None
        self.agent.loop.watch(self.sock.fileno(), 0, None)
        send = self.agent.transport.send
        # Duplicates, so reading and writing are separate selector entries.
        self.source = Source(self.agent, os.dup(self.sock.fileno()), lambda data: send(DATA, self.channel, data), self._on_peer_eof)
        self.sink = Sink(self.agent, os.dup(self.sock.fileno()), lambda n: send(CREDIT, self.channel, CREDIT_BODY.pack(DATA, n)), self._on_host_eof)
        send(CONNECTED, self.channel, b'{}')

    def _on_peer_eof(self):
        self.agent.transport.send(EOF, self.channel)
        self.peer_done = True
        self._close_when_done()

    def _on_host_eof(self):
        try:
            self.sock.shutdown(socket.SHUT_WR)
        except OSError:
            pass
        self.host_done = True
        self._close_when_done()

    def _close_when_done(self):
        if self.peer_done and self.host_done:
            self.close()


class ConnectFailure(Exception):
    def __init__(self, code, message):
        super().__init__(message)
        self.code = code
        self.message = message


def connect_failure(err):
    if err == errno.ETIMEDOUT:
        return ConnectFailure('CONNECT_TIMEOUT', os.strerror(err))
    return ConnectFailure('PORT_UNREACHABLE', os.strerror(err))


def local_address(host):
    """The address to connect to when `host` is loopback or one of the guest's own, else None."""
    if host == 'localhost':
        return '127.0.0.1'
    try:
        ip = ipaddress.ip_address(host)
    except ValueError:
        return None
    if ip.is_loopback:
        return str(ip)
    # Only an address of this machine can be bound (no ip_nonlocal_bind in the guest).
    with socket.socket(socket.AF_INET6 if ip.version == 6 else socket.AF_INET, socket.SOCK_DGRAM) as probe:
        try:
            probe.bind((str(ip), 0))
        except OSError:
            return None
    return str(ip)


class DataFs:
    """FIFREEZE/FITHAW of the data disk, so a memory snapshot holds a consistent file system."""

    def __init__(self, mount, enabled):
        self.mount = mount
        self.enabled = enabled
        self.frozen = False

    def freeze(self):
        if not self.enabled:
            return {'frozen': False, 'reason': 'not running as the guest init (--no-pid1)'}
        os.sync()
        self._ioctl(FIFREEZE, errno.EBUSY)  # EBUSY: frozen already
        self.frozen = True
        return {'frozen': True}

    def thaw(self):
        if self.enabled:
            self._ioctl(FITHAW, errno.EINVAL)  # EINVAL: was not frozen
        self.frozen = False
        return {'frozen': False}

    def _ioctl(self, request, harmless):
        fd = os.open(self.mount, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
        try:
            fcntl.ioctl(fd, request, 0)
        except OSError as e:
            if e.errno != harmless:
                raise
        finally:
            os.close(fd)


class Agent:
    def __init__(self, args):
        self.pid1 = not args.no_pid1
        self.loop = Loop()
        self.channels = {}
        self.processes = {}  # pid -> ExecChannel, until reaped (detached ones included)
        self.sources = set()
        self.generation = 0  # host connections so far: keeps exec group names unique
        self.cgroups = Cgroups(self.pid1)
        self.data_fs = DataFs(args.data_mount, self.pid1)
        self._watch_children()
        opener = SocketOpener(args.socket) if args.socket else PortOpener()
        self.transport = Transport(self.loop, opener, self.on_frame, self.detach_all, self._resume_sources)

    def run(self):
        self.loop.run_forever()

    def close_channel(self, channel, owner):
        """Forgets `channel` if `owner` still holds it; true if it did."""
        if self.channels.get(channel) is owner:
            del self.channels[channel]
            return True
        return False

    def detach_all(self):
        channels, self.channels = self.channels, {}
        for channel in channels.values():
            guarded(channel.detach)

    def on_frame(self, ftype, channel, payload):
        if ftype == HELLO:
            self._hello(channel, payload)
        elif ftype in (EXEC, CONNECT):
            self._open_channel(ftype, channel, payload)
        elif channel == 0:
            self._control(ftype, payload)
        elif channel in self.channels:
            self.channels[channel].on_frame(ftype, payload)
        elif ftype not in (CREDIT, STDIN, STDIN_EOF, DATA, EOF, CLOSE, SIGNAL, RESIZE):
            # Stream frames for a channel that just ended are normal races; others are not.
            log('frame type %d for unknown channel %d dropped' % (ftype, channel))

    def _hello(self, channel, payload):
        hello = json.loads(payload)
        self.generation += 1
        self.detach_all()
        self.transport.drop_output()
        if self.pid1:
            time.clock_settime(time.CLOCK_REALTIME, hello['now_ms'] / 1000)
            if hello.get('hostname'):
                socket.sethostname(hello['hostname'])
            self.cgroups.apply_limits(hello.get('limits'))
        if self.data_fs.frozen:
            guarded(self.data_fs.thaw)
        with open('/proc/sys/kernel/random/boot_id') as f:
            boot_id = f.read().strip()
        self.transport.send_json(HELLO_OK, channel, {
            'version': VERSION,
            'boot_id': boot_id,
            'pid_count': sum(1 for p in self.processes.values() if p.status is None),
            'nonce': hello.get('nonce'),
        })

    def _open_channel(self, ftype, channel, payload):
        failed = EXEC_FAILED if ftype == EXEC else CONNECT_FAILED
        if channel == 0 or channel in self.channels:
            log('channel %d is in use' % channel)
            return
        try:
            request = json.loads(payload)
            self.channels[channel] = ExecChannel(self, channel, request) if ftype == EXEC else TcpChannel(self, channel, request)
        except ConnectFailure as e:
            self.transport.send_json(failed, channel, {'code': e.code, 'message': e.message})
        except (ValueError, LookupError, TypeError) as e:
            code = 'SPAWN_FAILED' if ftype == EXEC else 'VALIDATION_FAILED'
            self.transport.send_json(failed, channel, {'code': code, 'message': 'invalid request: %s' % e})
        except OSError as e:
            code = 'SPAWN_FAILED' if ftype == EXEC else 'PORT_UNREACHABLE'
            self.transport.send_json(failed, channel, {'code': code, 'message': str(e)})

    def _control(self, ftype, payload):
        if ftype not in (PING, FS_FREEZE, FS_THAW):
            log('unknown control frame type %d dropped' % ftype)
            return
        reply = {'id': json.loads(payload)['id']}
        if ftype == PING:
            self.transport.send_json(PONG, 0, reply)
        elif ftype in (FS_FREEZE, FS_THAW):
            try:
                reply.update(self.data_fs.freeze() if ftype == FS_FREEZE else self.data_fs.thaw())
                self.transport.send_json(FS_OK, 0, reply)
            except OSError as e:
                reply['message'] = str(e)
                self.transport.send_json(FS_ERROR, 0, reply)

    def _resume_sources(self):
        for source in list(self.sources):
            source.refresh()

    def _watch_children(self):
        """SIGCHLD wakes the loop through a self-pipe; the handler itself does nothing."""
        r, w = os.pipe2(os.O_NONBLOCK | os.O_CLOEXEC)
        signal.set_wakeup_fd(w, warn_on_full_buffer=False)
        signal.signal(signal.SIGCHLD, lambda *_: None)
        if self.pid1:
            # PID 1 must not die of a stray signal (that panics the guest).
            signal.signal(signal.SIGTERM, signal.SIG_IGN)
            signal.signal(signal.SIGINT, signal.SIG_IGN)
        self.loop.watch(r, selectors.EVENT_READ, lambda _mask: self._on_wakeup(r))

    def _on_wakeup(self, fd):
        try:
            while os.read(fd, 512):
                pass
        except BlockingIOError:
            pass
        self._reap()

    def _reap(self):
        while True:
            try:
                pid, status = os.waitpid(-1, os.WNOHANG)
            except ChildProcessError:
                break
            if pid == 0:
                break
            process = self.processes.pop(pid, None)
            if process is not None:
                guarded(process.on_exit, status)
        self.cgroups.retry_leftovers()


def main():
    parser = argparse.ArgumentParser(description='faas guest agent')
    parser.add_argument('--socket', help='connect to this unix socket instead of the virtio port (tests)')
    parser.add_argument('--no-pid1', action='store_true', help='do not set up the machine (tests on the host)')
    parser.add_argument('--data-mount', default='/run/faas/data', help='mount point of the data disk')
    Agent(parser.parse_args()).run()


if __name__ == '__main__':
    main()
