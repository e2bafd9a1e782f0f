import type { Document } from 'mongodb';
import { Code, CommandError } from './errors.js';

export type FailPointMode = 'alwaysOn' | 'off' | { times: number } | { skip: number };

export interface FailCommandData {
  failCommands?: string[];
  errorCode?: number;
  /** Replace the labels the server would add; [] removes them. */
  errorLabels?: string[];
  closeConnection?: boolean;
  writeConcernError?: { code: number; errmsg: string; codeName?: string; errInfo?: Document };
  blockConnection?: boolean;
  blockTimeMS?: number;
  appName?: string;
  /** Only commands on this namespace (`db.collection`), as mongod's shouldActivateFailCommandFailPoint. */
  namespace?: string;
}

export interface FailPointConfig {
  mode: FailPointMode;
  data?: FailCommandData;
}

/** Who sent a command, and on what: the fail point's filters. */
export interface CommandClient {
  /** client.application.name from the connection's handshake. */
  appName: string | undefined;
  /** `db.collection` for a command on a collection, else the database. */
  namespace: string;
}

/** What the fail point does to a command before it runs, in the server's order. */
export interface BeforeCommand {
  blockMs?: number;
  closeConnection?: boolean;
  errorCode?: number;
  errorLabels?: string[];
}

/** What it adds after a command that waits for write concern took effect. */
export interface AfterCommand {
  writeConcernError: Document;
  errorLabels?: string[];
}

/**
 * The server's `failCommand` fail point. As in mongod, each activation is decided by first asking whether
 * the command is one it targets (name, appName, namespace, and something to do at that stage), then by the mode
 * ({times}, {skip} count only targeted commands); `count` in the reply to a new configuration is how many
 * times the old one fired. configureFailPoint itself is never failed.
 */
export class FailCommand {
  private mode: FailPointMode = 'off';
  private data: FailCommandData = {};
  private timesEntered = 0;

  configure(config: Document): number {
    const mode = config.mode as unknown;
    const valid =
      mode === 'alwaysOn' ||
      mode === 'off' ||
      (typeof mode === 'object' &&
        mode !== null &&
        (typeof (mode as { times?: unknown }).times === 'number' ||
          typeof (mode as { skip?: unknown }).skip === 'number'));
    if (!valid) throw new CommandError(Code.BadValue, `unsupported fail point mode ${JSON.stringify(mode)}`);
    const data = (config.data ?? {}) as FailCommandData;
    if (data.blockConnection && typeof data.blockTimeMS !== 'number') {
      throw new CommandError(
        Code.InvalidOptions,
        "must specify 'blockTimeMS' when 'blockConnection' is true",
      );
    }
    const count = this.timesEntered;
    this.mode =
      typeof mode === 'object' ? ({ ...(mode as object) } as FailPointMode) : (mode as FailPointMode);
    this.data = data;
    this.timesEntered = 0;
    return count;
  }

  before(command: string, client: CommandClient): BeforeCommand | undefined {
    const { closeConnection, blockConnection, errorCode } = this.data;
    const acts = closeConnection === true || blockConnection === true || typeof errorCode === 'number';
    if (!acts || !this.targets(command, client) || !this.fires()) return undefined;
    return {
      ...(blockConnection ? { blockMs: this.data.blockTimeMS ?? 0 } : {}),
      ...(closeConnection ? { closeConnection: true } : {}),
      ...(typeof errorCode === 'number' ? { errorCode } : {}),
      ...(this.data.errorLabels ? { errorLabels: this.data.errorLabels } : {}),
    };
  }

  after(command: string, client: CommandClient): AfterCommand | undefined {
    const { writeConcernError } = this.data;
    if (!writeConcernError || !this.targets(command, client) || !this.fires()) return undefined;
    return { writeConcernError, ...(this.data.errorLabels ? { errorLabels: this.data.errorLabels } : {}) };
  }

  private targets(command: string, client: CommandClient): boolean {
    if (command === 'configureFailPoint') return false;
    if (this.data.appName !== undefined && this.data.appName !== client.appName) return false;
    if (this.data.namespace !== undefined && this.data.namespace !== client.namespace) return false;
    // Names are matched as the server matches them: any alias of the same command.
    return (this.data.failCommands ?? []).some((name) => sameCommand(name, command));
  }

  private fires(): boolean {
    const mode = this.mode;
    if (mode === 'off') return false;
    if (mode !== 'alwaysOn') {
      if ('times' in mode) {
        if (mode.times <= 0) return false;
        mode.times -= 1;
      } else if (mode.skip > 0) {
        mode.skip -= 1;
        return false;
      }
    }
    this.timesEntered += 1;
    return true;
  }
}

const HELLO_ALIASES = new Set(['hello', 'isMaster', 'ismaster']);

function sameCommand(a: string, b: string): boolean {
  return a === b || (HELLO_ALIASES.has(a) && HELLO_ALIASES.has(b));
}
