import { readFileSync, readlinkSync } from 'node:fs';

/**
 * Which process this is, in terms another process on the same host can check: the kernel's boot
 * id (a new random id at every boot, so it names one run of one machine), the pid namespace (a
 * container has its own) and the pid.
 */
export interface HostProcess {
  readonly boot: string;
  readonly pidNamespace: string;
  readonly pid: number;
}

/** This process, or undefined where `/proc` does not say (not Linux): nothing is then proven gone. */
export const thisProcess: HostProcess | undefined = (() => {
  try {
    return {
      boot: readFileSync('/proc/sys/kernel/random/boot_id', 'utf8').trim(),
      pidNamespace: readlinkSync('/proc/self/ns/pid'),
      pid: process.pid,
    };
  } catch {
    return undefined;
  }
})();

/** Reads a {@link HostProcess} from a parsed record field; undefined when it is not one. */
export function asHostProcess(value: unknown): HostProcess | undefined {
  if (typeof value !== 'object' || value === null) return undefined;
  const { boot, pidNamespace, pid } = value as Record<string, unknown>;
  return typeof boot === 'string' && typeof pidNamespace === 'string' && Number.isInteger(pid)
    ? { boot, pidNamespace, pid: pid as number }
    : undefined;
}

/**
 * Whether `other` is proven to no longer exist: it ran in this boot of this host, in this pid
 * namespace, is not this process, and no process has its pid now. Anything else (another host,
 * another boot or container, a pid in use, even by a zombie or a newer process that reused it)
 * is not proof, and answers false.
 */
export function processGone(other: HostProcess | undefined): boolean {
  if (other === undefined || thisProcess === undefined) return false;
  if (other.boot !== thisProcess.boot || other.pidNamespace !== thisProcess.pidNamespace) {
    return false;
  }
  if (other.pid === thisProcess.pid || other.pid <= 0) return false;
  try {
    process.kill(other.pid, 0);
    return false;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'ESRCH';
  }
}
