// The firewall's base rules (protect = yes, the backends' tables and chains): installed at
// start and on each reload, checked periodically and reinstalled when something removed them
// (issue 12, items 8 and 10). Shell (runs the backends' steps).
import { SystemError } from '../src/errors.js';
import { accessText } from '../src/net/access.js';
import { protectedAccess, type Backend, type DoorRules } from './firewall/index.js';
import { applyAll, runArgv } from './firewall/run.js';
import type { Logger } from './log.js';
import type { Runtime } from './runtime.js';

/** The SPA doors a built-in backend serves, as its setup() takes them. */
function doorRulesOf(runtime: Runtime, b: Backend): DoorRules[] {
  return runtime.config.doors.flatMap((d) => (d.kind === 'spa' && runtime.backends.get(d.name) === b ? [{ door: d.name, protect: d.protect, access: d.access }] : []));
}

/** Each distinct backend of the SPA doors, once, in config order. */
function spaBackends(runtime: Runtime): Backend[] {
  const seen = new Set<Backend>();
  for (const door of runtime.config.doors) {
    const b = runtime.backends.get(door.name);
    if (door.kind === 'spa' && b) seen.add(b);
  }
  return [...seen];
}

export class FirewallGuard {
  private checking = false;

  constructor(private readonly log: Logger) {}

  /**
   * Installs each built-in backend's base rules. At start (`fatal`), a backend that cannot
   * install a door's `protect = yes` stops the daemon: a door must not run as if protected
   * while its port is exposed (systemd's Restart= tries again). On a reload it is logged and
   * returned (one line per backend that failed).
   */
  async setup(runtime: Runtime, fatal: boolean): Promise<string[]> {
    const failed: string[] = [];
    const backends = spaBackends(runtime);
    for (const b of backends) {
      const doors = doorRulesOf(runtime, b);
      const r = await applyAll(b.setup(doors));
      if (!r.ok) {
        this.log.error({ backend: b.name, error: r.message }, 'firewall setup failed');
        failed.push(`firewall setup failed: ${b.name}: ${r.message}`);
        const guarded = doors.filter((d) => d.protect).map((d) => d.door);
        if (fatal && guarded.length > 0) throw new SystemError('command', `firewall ${b.name}: cannot install protect = yes for ${guarded.map((d) => `[${d}]`).join(', ')}: ${r.message}`);
      } else this.log.info({ backend: b.name, doors: doors.map((d) => d.door), protect: protectedAccess(doors).map(accessText) }, 'firewall set up');
    }
    // fwknop stanzas' doors: base rules of their shared backend (CMD_CYCLE backends have none).
    const fw = runtime.fwknop;
    const fb = fw ? runtime.backends.get(fw.doors[0] ?? '') : undefined;
    if (fw && fb && !backends.includes(fb)) {
      const r = await applyAll(fb.setup(fw.doors.filter((d) => runtime.backends.get(d) === fb).map((door) => ({ door, protect: false, access: [] }))));
      if (!r.ok) {
        this.log.error({ backend: fb.name, error: r.message }, 'firewall setup failed');
        failed.push(`firewall setup failed: ${fb.name}: ${r.message}`);
      }
    }
    return failed;
  }

  /**
   * Issue 12, item 10: after `nft flush ruleset` (or another tool's reload) the protected
   * ports were exposed until a restart. Each backend that can say whether its base rules are
   * in place is asked; rules found gone are reinstalled, with a log line either way. A check
   * still running when the next is due makes that one a no-op.
   */
  async check(runtime: Runtime): Promise<void> {
    if (this.checking) return;
    this.checking = true;
    try {
      for (const b of spaBackends(runtime)) {
        if (!b.installed) continue;
        const doors = doorRulesOf(runtime, b);
        const probe = b.installed(doors);
        const r = await runArgv(probe.argv);
        if (r.ok) continue;
        if (r.failure !== 'exit' || r.code === null || !probe.absentCodes.includes(r.code)) {
          this.log.error({ backend: b.name, error: r.stderr }, 'firewall check failed');
          continue;
        }
        this.log.warn({ backend: b.name, doors: doors.map((d) => d.door), protect: protectedAccess(doors).map(accessText) }, 'firewall rules gone (flushed?); reinstalling');
        const s = await applyAll(b.setup(doors));
        if (s.ok) this.log.info({ backend: b.name }, 'firewall rules reinstalled');
        else this.log.error({ backend: b.name, error: s.message }, 'firewall reinstall failed');
      }
    } catch (e) {
      this.log.error({ error: (e as Error).message }, 'firewall check failed');
    } finally {
      this.checking = false;
    }
  }
}
