import type { Document } from 'mongodb';
import type { Storage } from './storage.js';

/**
 * The majority commit point of a replica set whose other members the peer plays. While a majority is reachable,
 * every commit is majority-committed at once. When it is not (`setMajorityReachable(false)`: the secondaries
 * are down or partitioned), writes still commit on the primary, but the commit point stays where it was:
 * majority reads (and snapshot reads, which read majority-committed data) do not see them, and a write that
 * asks for `w: 'majority'` waits, as mongod's replication coordinator does, until the majority is back, its
 * `wtimeout` passes (WriteConcernFailed, 64, `errInfo.wtimeout`) or its `maxTimeMS` runs out
 * (MaxTimeMSExpired, 50), each answered as a `writeConcernError` beside the write's own result.
 */
export class Replication {
  private frozenAt: number | undefined;
  private readonly waiting = new Set<() => void>();

  constructor(private readonly storage: Storage) {}

  /** The latest cluster time a majority has: a majority read reads at this time. */
  get commitPoint(): number {
    return this.frozenAt ?? this.storage.now;
  }

  get majorityReachable(): boolean {
    return this.frozenAt === undefined;
  }

  /** Where a new majority (or snapshot) reader reads: the commit point, as recent as a server's. */
  readPoint(): number {
    return this.frozenAt ?? this.storage.current();
  }

  /**
   * The oldest time still readable: mongod keeps `minSnapshotHistoryWindowInSeconds` of history behind its
   * stable timestamp, which follows the majority commit point (so history stops being discarded while a
   * majority is missing).
   */
  oldestReadable(windowSeconds: number): number {
    const reference = this.frozenAt === undefined ? Date.now() : this.storage.madeAt(this.frozenAt);
    return reference - windowSeconds * 1000;
  }

  setMajorityReachable(reachable: boolean): void {
    if (!reachable) {
      this.frozenAt ??= this.storage.now;
      return;
    }
    this.frozenAt = undefined;
    for (const wake of this.waiting) wake();
    this.waiting.clear();
  }

  /**
   * Waits until a majority has everything committed so far, at most the write concern's `wtimeout` and the
   * command's remaining `maxTimeMS` (none: for ever, as on a server). Returns the write concern error, if any.
   */
  async waitForMajority(limits: {
    writeConcern: Document;
    wtimeoutMs?: number;
    maxTimeMs?: number;
  }): Promise<Document | undefined> {
    const ts = this.storage.now;
    if (this.commitPoint >= ts) return undefined;
    const bounds = [limits.wtimeoutMs, limits.maxTimeMs].filter((ms): ms is number => ms !== undefined);
    let timer: NodeJS.Timeout | undefined;
    let wake: () => void = () => {};
    const reached = new Promise<'reached'>((resolve) => {
      wake = () => resolve('reached');
      this.waiting.add(wake);
    });
    const expired = new Promise<'wtimeout' | 'maxTime'>((resolve) => {
      if (bounds.length === 0) return;
      const ms = Math.min(...bounds);
      timer = setTimeout(() => resolve(ms === limits.maxTimeMs ? 'maxTime' : 'wtimeout'), ms);
      timer.unref();
    });
    const outcome = await Promise.race([reached, expired]);
    clearTimeout(timer);
    this.waiting.delete(wake);
    if (outcome === 'reached') return undefined;
    if (outcome === 'maxTime') {
      return { code: 50, codeName: 'MaxTimeMSExpired', errmsg: 'operation exceeded time limit' };
    }
    return {
      code: 64,
      codeName: 'WriteConcernFailed',
      errmsg: 'waiting for replication timed out',
      errInfo: { wtimeout: true, writeConcern: { ...limits.writeConcern, provenance: 'clientSupplied' } },
    };
  }
}
