/**
 * 0MQ helpers for raw test handlers.
 */
import { XPublisher } from 'zeromq';

/**
 * A PUB-like socket connected to a server's recv_spec that resolves only once
 * the server's SUB has subscribed: before that, PUB drops replies silently.
 * (An XPUB hands the subscription frame to us; it otherwise sends as PUB does.)
 */
export async function subscribedPublisher(recvSpec: string, ms = 10_000): Promise<XPublisher> {
  const pub = new XPublisher({ linger: 0 });
  pub.connect(recvSpec);
  // Frames are subscribe (1) or unsubscribe (0) + the topic.
  const subscribed = (async () => {
    for (;;) {
      const [frame] = await pub.receive();
      if (frame !== undefined && frame[0] === 1) return;
    }
  })();
  let timer: NodeJS.Timeout | undefined;
  const late = new Promise<never>((_resolve, reject) => (timer = setTimeout(() => reject(new Error(`no subscription on ${recvSpec} within ${ms} ms`)), ms)));
  try {
    await Promise.race([subscribed, late]);
  } catch (err) {
    subscribed.catch(() => undefined); // its receive fails once the socket is closed
    pub.close();
    throw err;
  } finally {
    clearTimeout(timer);
  }
  return pub;
}
