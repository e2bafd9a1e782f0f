import { createServer, type Server, type Socket } from 'node:net';
import type { ConnectionInfo, Dispatcher } from './dispatch.js';
import { encodeReply, MessageSplitter, parseMessage } from './framing.js';

/**
 * The TCP side: one listening socket on 127.0.0.1, and per connection a queue so its requests run one after
 * another, as a server runs them (a blocked command holds its connection, not the others).
 */
export class WireServer {
  private server: Server | undefined;
  private readonly sockets = new Set<Socket>();
  private nextConnectionId = 1;
  port = 0;

  constructor(private readonly dispatcher: Dispatcher) {}

  get openConnections(): number {
    return this.sockets.size;
  }

  /** Listens on `port` (0: any free one, then kept for every later listen). */
  async listen(): Promise<void> {
    const server = createServer((socket) => this.accept(socket));
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(this.port, '127.0.0.1', () => {
        server.off('error', reject);
        resolve();
      });
    });
    this.port = (server.address() as { port: number }).port;
    this.server = server;
  }

  /** Closes the listening socket and every open connection. */
  async stop(): Promise<void> {
    const server = this.server;
    this.server = undefined;
    for (const socket of this.sockets) socket.destroy();
    this.sockets.clear();
    if (server) await new Promise<void>((resolve) => server.close(() => resolve()));
  }

  private accept(socket: Socket): void {
    this.sockets.add(socket);
    socket.setNoDelay(true);
    const connection: ConnectionInfo = { id: this.nextConnectionId++ };
    const splitter = new MessageSplitter();
    let queue = Promise.resolve();
    socket.on('data', (chunk) => {
      for (const message of splitter.push(chunk)) {
        queue = queue.then(() => this.answer(socket, connection, message));
      }
    });
    socket.on('error', () => socket.destroy());
    socket.on('close', () => this.sockets.delete(socket));
  }

  private async answer(socket: Socket, connection: ConnectionInfo, message: Buffer): Promise<void> {
    if (socket.destroyed) return;
    try {
      const request = parseMessage(message);
      const outcome = await this.dispatcher.handle(request, connection);
      if ('close' in outcome) socket.destroy();
      else if (!request.moreToCome && !socket.destroyed) socket.write(encodeReply(request, outcome.reply));
    } catch (error) {
      // A message this peer cannot read, or a bug in it: say so, and close the connection as a server would.
      console.error('wire peer:', error);
      socket.destroy();
    }
  }
}
