// What both web tests need: their npm tools (installed by tests/web/run into NODE_PATH), the
// settings tests/web/run passes in the environment, and a loopback port nobody listens on.
import { createRequire } from 'node:module';
import net from 'node:net';

export const requireTool = createRequire(process.env.NODE_PATH + '/');

export const env = (k) => {
  if (!process.env[k])
    throw new Error(k + ' is not set (run through tests/web/run)');
  return process.env[k];
};

// A closed loopback port: webhook deliveries to it fail fast (connect_failed).
export const closedPort = () =>
  new Promise((resolve) => {
    const s = net.createServer().listen(0, '127.0.0.1', () => {
      const p = s.address().port;
      s.close(() => resolve(p));
    });
  });
