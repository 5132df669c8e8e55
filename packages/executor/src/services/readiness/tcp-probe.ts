import type { ProbeSpec } from './probe-config.ts';
import { timed, type Probe, type ProbeContext } from './probe.ts';

type TcpSpec = Extract<ProbeSpec, { type: 'tcp' }>;

/** Passes when a TCP connection to host:port inside the instance is established (then closed at once). */
export function tcpProbe(spec: TcpSpec, ctx: ProbeContext): Probe {
  const target = `${spec.host}:${spec.port}`;
  return {
    type: 'tcp',
    timeoutMs: spec.timeoutMs,
    run: () =>
      timed('tcp', ctx.clock, async () => {
        // connect() inside the instance's network namespace: its loopback, never the host's.
        const socket = await ctx.runtime.connect(ctx.instance.id, spec.port, { host: spec.host, timeoutMs: spec.timeoutMs });
        socket.destroy();
        return { ok: true, message: `connected to ${target}` };
      }),
  };
}
