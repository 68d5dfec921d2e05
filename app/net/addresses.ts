import net from 'node:net';

/**
 * Client addresses: matching against lists of IPs and CIDR ranges, and the
 * client address behind reverse proxies by the same rules Express applies
 * to `req.ip` (VCLERK_TRUST_PROXY), so that the signalling server and the
 * metrics guard agree with the HTTP audit trail.
 */

const NAMED: Record<string, string[]> = {
  loopback: ['127.0.0.1/8', '::1/128'],
  linklocal: ['169.254.0.0/16', 'fe80::/10'],
  uniquelocal: ['10.0.0.0/8', '172.16.0.0/12', '192.168.0.0/16', 'fc00::/7'],
};

/** `::ffff:1.2.3.4` is the IPv4 address 1.2.3.4 (dual-stack sockets report IPv4 clients so). */
export function normaliseAddress(address: string): string {
  const mapped = /^::ffff:(\d{1,3}(?:\.\d{1,3}){3})$/i.exec(address);
  return mapped ? mapped[1]! : address;
}

/** A predicate over addresses for a comma-separated list of IPs, CIDR ranges and the names loopback, linklocal, uniquelocal. */
export function addressMatcher(list: string): (address: string) => boolean {
  const blocks = new net.BlockList();
  let empty = true;
  for (const item of list.split(',').map((s) => s.trim()).filter(Boolean)) {
    for (const entry of NAMED[item] ?? [item]) {
      const [address, bits] = entry.split('/') as [string, string | undefined];
      const family = net.isIP(address);
      if (family === 0) throw new Error(`not an IP address or CIDR range: ${item}`);
      const type = family === 6 ? 'ipv6' : 'ipv4';
      if (bits === undefined) blocks.addAddress(address, type);
      else blocks.addSubnet(address, Number(bits), type);
      empty = false;
    }
  }
  if (empty) return () => false;
  return (raw) => {
    const address = normaliseAddress(raw);
    const family = net.isIP(address);
    if (family === 0) return false;
    return blocks.check(address, family === 6 ? 'ipv6' : 'ipv4');
  };
}

/** Whether the hop `i` away (0: the socket's peer) at `address` is a trusted proxy, per VCLERK_TRUST_PROXY. */
export type TrustProxy = (address: string, hop: number) => boolean;

export function trustProxyFunction(setting: string): TrustProxy {
  if (setting === '') return () => false;
  if (/^\d+$/.test(setting)) {
    const hops = Number(setting);
    return (_address, hop) => hop < hops;
  }
  const matches = addressMatcher(setting);
  return (address) => matches(address);
}

/**
 * The client's address: the socket's peer, or, while that is a trusted
 * proxy, the next address to the left in X-Forwarded-For (as Express and
 * proxy-addr do). Answers null when the result is not an IP address.
 */
export function clientAddress(socketAddress: string | undefined, forwardedFor: string | string[] | undefined, trust: TrustProxy): string | null {
  if (!socketAddress) return null;
  const header = Array.isArray(forwardedFor) ? forwardedFor.join(',') : forwardedFor ?? '';
  const chain = [socketAddress, ...header.split(',').map((s) => s.trim()).filter(Boolean).reverse()];
  let client = chain[chain.length - 1]!;
  for (let hop = 0; hop < chain.length - 1; hop++) {
    if (!trust(chain[hop]!, hop)) {
      client = chain[hop]!;
      break;
    }
  }
  return net.isIP(client) ? client : null;
}
