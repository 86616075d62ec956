// RFC 5782 health probes of the blocklist zones configured with `probe: true`: every
// dnsbl.probe_interval (and once at start) 127.0.0.2 must be listed and 127.0.0.1 must not. A zone
// that fails is taken out of service (ZoneHealth) with a `dnsbl_zone_disabled` line, and back with
// `dnsbl_zone_enabled` when it passes again — a dead or hijacked list then neither refuses
// everyone nor slows every mail down. Called by daemon/serve.ts.

import { probeZone } from '../rules/dnsbl.js';
import type { Logger } from './logger.js';
import type { Runtime } from './runtime.js';

export class ZoneProber {
  private timer: NodeJS.Timeout | null = null;
  private running = false;

  constructor(
    private readonly runtime: () => Runtime,
    private readonly log: Logger,
  ) {}

  start(): void {
    const r = this.runtime();
    const interval = r.config.dnsbl.probe_interval;
    if (interval <= 0 || !r.config.dnsbl.zones.some((z) => z.probe)) return;
    void this.probe();
    this.timer = setInterval(() => void this.probe(), interval);
    this.timer.unref();
  }

  stop(): void {
    if (this.timer !== null) clearInterval(this.timer);
    this.timer = null;
  }

  async probe(): Promise<void> {
    if (this.running) return;
    this.running = true;
    try {
      const r = this.runtime();
      const { dns, health } = r.services;
      await Promise.all(
        r.config.dnsbl.zones
          .filter((z) => z.probe)
          .map(async (z) => {
            const problem = await probeZone(dns, z.zone);
            if (!health.set(z.zone, problem)) return;
            if (problem === null)
              this.log.info(
                { event: 'dnsbl_zone_enabled', zone: z.zone },
                'blocklist zone passes its probe again',
              );
            else
              this.log.error(
                { event: 'dnsbl_zone_disabled', zone: z.zone, problem },
                'blocklist zone failed its probe; not used',
              );
          }),
      );
    } finally {
      this.running = false;
    }
  }
}
