import { setTimeout as delay } from 'node:timers/promises';
import { type Document, Timestamp, UUID } from 'mongodb';
import type { StoredDocument } from './documents.js';

/**
 * Multi-version storage. Every document is a chain of versions, each stamped with the cluster time of the
 * commit (a transaction's or a plain write's) that made it; a reader at time T sees, per document, the last
 * version at or before T. Versions are immutable and never copied, so starting a transaction or a snapshot
 * read costs nothing, and every version is kept until its collection is dropped (a test peer lives for
 * one test file, not for days).
 *
 * The catalog (which databases, collections and indexes exist) is not versioned: create and drop take effect
 * at once for every reader.
 */

interface Version {
  ts: number;
  /** undefined: deleted at `ts`. */
  doc: StoredDocument | undefined;
}

/** Who holds a document's pending write; `ended` settles when that writer commits or aborts. */
export interface Holder {
  readonly ended: Promise<void>;
}

export class Chain {
  readonly versions: Version[] = [];
  /** An open transaction that wrote this document and has not committed or aborted yet. */
  holder: Holder | undefined;

  /** The last version at or before `ts`; with `hidden`, versions of commits still being applied are skipped. */
  visibleAt(ts: number, hidden?: (ts: number) => boolean): StoredDocument | undefined {
    for (let i = this.versions.length - 1; i >= 0; i -= 1) {
      const version = this.versions[i] as Version;
      if (version.ts <= ts && !hidden?.(version.ts)) return version.doc;
    }
    return undefined;
  }

  /** The time of the last committed change, -1 for a chain that only has a pending insert. */
  get lastCommit(): number {
    return this.versions.at(-1)?.ts ?? -1;
  }
}

export class Collection {
  readonly uuid = new UUID();
  /** Natural order is insertion order, as in a freshly loaded collection on a server. */
  readonly chains = new Map<string, Chain>();
  /** Secondary index specifications as given to createIndexes (the `_id_` index is implicit). */
  indexes: Document[] = [];

  constructor(
    readonly db: string,
    readonly name: string,
    readonly options: Document,
  ) {}

  chainFor(key: string): Chain {
    let chain = this.chains.get(key);
    if (!chain) {
      chain = new Chain();
      this.chains.set(key, chain);
    }
    return chain;
  }
}

/** Cluster times are Timestamps of whole seconds on a server: one made this recently is still "now". */
const CLOCK_RESOLUTION_MS = 1000;

export class Storage {
  /** The cluster time of the last commit; a reader "now" reads at this time. */
  private clock = 0;
  /** When each cluster time was made (wall clock, ms), for the snapshot history window. */
  private readonly made: number[] = [Date.now()];
  /** Cluster times are Timestamps of this second with the commit counter as increment. */
  private readonly epoch = Math.floor(Date.now() / 1000);
  readonly databases = new Map<string, Map<string, Collection>>();
  /**
   * Commits still being applied (a multi-shard commit, see the README): their time, and the moment (Date.now())
   * from which every reader sees them.
   */
  private readonly applying = new Map<number, number>();

  get now(): number {
    return this.clock;
  }

  /** The commit at `ts` becomes visible to reads that do not wait for it only `lagMs` from now. */
  applyLater(ts: number, lagMs: number): void {
    if (lagMs > 0) this.applying.set(ts, Date.now() + lagMs);
  }

  /** True while the commit at `ts` is still being applied. */
  readonly stillApplying = (ts: number): boolean => {
    const until = this.applying.get(ts);
    if (until === undefined) return false;
    if (Date.now() < until) return true;
    this.applying.delete(ts);
    return false;
  };

  /** Resolves once every commit at or before `ts` is applied: what a read with afterClusterTime waits for. */
  async applied(ts: number): Promise<void> {
    for (const [commit, until] of [...this.applying]) {
      if (commit <= ts && this.stillApplying(commit)) await delay(until - Date.now());
    }
  }

  /** The time of a new commit: strictly after every earlier one. */
  tick(): number {
    this.clock += 1;
    this.made[this.clock] = Date.now();
    return this.clock;
  }

  /**
   * The current cluster time for a new reader. A server's cluster time follows the wall clock (an idle
   * primary writes a no-op every 10 s); the peer's moves only on commits, so a reader arriving a second or more
   * after the last one gets a no-op tick, and its time is as recent as a server's would be.
   */
  current(): number {
    if (Date.now() - this.madeAt(this.clock) >= CLOCK_RESOLUTION_MS) this.tick();
    return this.clock;
  }

  /** When cluster time `ts` was made (wall clock, ms). */
  madeAt(ts: number): number {
    return this.made[Math.min(Math.max(ts, 0), this.clock)] ?? 0;
  }

  timestamp(ts: number = this.clock): Timestamp {
    return new Timestamp({ t: this.epoch, i: ts });
  }

  /** A cluster time the client sends back (atClusterTime, afterClusterTime) as a storage time. */
  timeOf(timestamp: Timestamp): number {
    if (timestamp.high < this.epoch) return 0;
    if (timestamp.high > this.epoch) return Number.POSITIVE_INFINITY;
    return timestamp.low;
  }

  collection(db: string, name: string): Collection | undefined {
    return this.databases.get(db)?.get(name);
  }

  /** Implicit creation, as an insert or createIndexes on a missing collection does. */
  ensureCollection(
    db: string,
    name: string,
    options: Document = {},
  ): { collection: Collection; created: boolean } {
    let collections = this.databases.get(db);
    if (!collections) {
      collections = new Map();
      this.databases.set(db, collections);
    }
    const existing = collections.get(name);
    if (existing) return { collection: existing, created: false };
    const collection = new Collection(db, name, options);
    collections.set(name, collection);
    return { collection, created: true };
  }

  dropCollection(db: string, name: string): Collection | undefined {
    const collections = this.databases.get(db);
    const collection = collections?.get(name);
    collections?.delete(name);
    if (collections?.size === 0) this.databases.delete(db);
    return collection;
  }

  dropDatabase(db: string): void {
    this.databases.delete(db);
  }
}

/**
 * The documents of one collection as a reader sees them: committed at `ts`, plus a writer's own changes. A read
 * that does not wait for commits being applied (`hidesApplying`) sees the versions from before them.
 */
export class ReadView {
  constructor(
    readonly storage: Storage,
    readonly ts: number,
    private readonly own?: ReadonlyMap<Chain, StoredDocument | undefined>,
    private readonly hidesApplying = false,
  ) {}

  *documents(db: string, name: string): Generator<StoredDocument> {
    const collection = this.storage.collection(db, name);
    if (!collection) return;
    for (const chain of collection.chains.values()) {
      const doc = this.visible(chain);
      if (doc) yield doc;
    }
  }

  get(collection: Collection, key: string): StoredDocument | undefined {
    const chain = collection.chains.get(key);
    return chain ? this.visible(chain) : undefined;
  }

  private visible(chain: Chain): StoredDocument | undefined {
    if (this.own?.has(chain)) return this.own.get(chain);
    return chain.visibleAt(this.ts, this.hidesApplying ? this.storage.stillApplying : undefined);
  }
}

/** Thrown by a write to a document another open transaction has written: who holds it. */
export class Blocked extends Error {
  constructor(readonly holder: Holder) {
    super('document held by an open transaction');
  }
}

/** Thrown by a write to a document committed after the writer's snapshot. */
export class ChangedSinceSnapshot extends Error {}

/**
 * Pending changes on a snapshot: a transaction's, or one plain write command's. Writes are checked at the
 * moment they are made (first writer wins): a document another open writer holds throws Blocked, one
 * committed after this writer's snapshot throws ChangedSinceSnapshot. What the caller does with those is
 * its business (a transaction fails with WriteConflict, a plain write waits and runs again).
 */
export class Writer implements Holder {
  private readonly changes = new Map<Chain, StoredDocument | undefined>();
  private readonly chainsCreated: { collection: Collection; key: string }[] = [];
  private settle: () => void = () => {};
  readonly ended = new Promise<void>((resolve) => {
    this.settle = resolve;
  });
  readonly view: ReadView;

  constructor(
    readonly storage: Storage,
    readonly readTs: number,
  ) {
    this.view = new ReadView(storage, readTs, this.changes);
  }

  write(collection: Collection, key: string, doc: StoredDocument | undefined): void {
    const existed = collection.chains.has(key);
    const chain = collection.chainFor(key);
    if (!existed) this.chainsCreated.push({ collection, key });
    if (chain.holder && chain.holder !== this) throw new Blocked(chain.holder);
    if (chain.lastCommit > this.readTs) throw new ChangedSinceSnapshot();
    chain.holder = this;
    this.changes.set(chain, doc);
  }

  /**
   * Makes every change visible at one new cluster time (none is needed when nothing changed), and returns that
   * time.
   */
  commit(): number | undefined {
    let ts: number | undefined;
    if (this.changes.size > 0) {
      ts = this.storage.tick();
      for (const [chain, doc] of this.changes) {
        chain.versions.push({ ts, doc });
        chain.holder = undefined;
      }
    }
    this.settle();
    return ts;
  }

  abort(): void {
    for (const chain of this.changes.keys()) {
      if (chain.holder === this) chain.holder = undefined;
    }
    for (const { collection, key } of this.chainsCreated) {
      if (collection.chains.get(key)?.versions.length === 0) collection.chains.delete(key);
    }
    this.settle();
  }
}
