import { createServer } from 'node:net';

/**
 * Servers of a test's own (a private PostgreSQL, a PgBouncer) on a port the
 * kernel had free a moment ago. The port is free only while we look: between
 * closing our probe and the server's bind, another process may take it. The
 * server then fails to start, and it is started again on a new port.
 */

/** How many ports are tried before giving up: one taken port is bad luck, five in a row is not. */
const ATTEMPTS = 5;

/** Thrown by a start attempt whose server could not bind its port because something else holds it. */
export class PortTakenError extends Error {
  constructor(
    readonly port: number,
    /** The server's log, or its end: what shows that the port was taken. */
    readonly log: string,
  ) {
    super(`port ${port} was taken before the server could bind it:\n${log}`);
    this.name = 'PortTakenError';
  }
}

/** True when a server's log says its bind failed because the address was in use (EADDRINUSE). */
export function saysAddressInUse(log: string): boolean {
  return /address already in use/i.test(log);
}

/** A port nothing listens on now (the kernel's pick for port 0 on 127.0.0.1). */
export async function sparePort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const address = server.address();
  await new Promise<void>((resolve) => server.close(() => resolve()));
  if (address === null || typeof address === 'string') throw new Error('no spare port');
  return address.port;
}

/**
 * Runs `start` on a spare port; when it throws `PortTakenError`, again on a
 * new port, up to five ports. Any other error ends it at once. `what` names
 * the server in the final error.
 */
export async function startOnSparePort<T>(what: string, start: (port: number) => Promise<T>): Promise<T> {
  const taken: PortTakenError[] = [];
  while (taken.length < ATTEMPTS) {
    const port = await sparePort();
    try {
      return await start(port);
    } catch (error) {
      if (!(error instanceof PortTakenError)) throw error;
      taken.push(error);
    }
  }
  throw new Error(
    `${what} did not start: each of the ${ATTEMPTS} spare ports it was given (${taken
      .map((error) => error.port)
      .join(', ')}) was taken by another process before the server could bind it. The last log:\n${
      taken.at(-1)?.log ?? ''
    }`,
    { cause: taken.at(-1) },
  );
}
