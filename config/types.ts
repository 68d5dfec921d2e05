import net from 'node:net';

/**
 * Value types a setting can have. Each parses a raw value (a string from the
 * environment or a secret file, or a JSON value from the config file) and
 * either returns the typed value or a human-readable reason.
 */
export interface SettingType<T> {
  /** Shown in the configuration reference. */
  readonly label: string;
  parse(raw: unknown): { ok: true; value: T } | { ok: false; reason: string };
}

export type Parsed<T> = ReturnType<SettingType<T>['parse']>;

const ok = <T>(value: T) => ({ ok: true as const, value });
const fail = (reason: string) => ({ ok: false as const, reason });

export function integer(min: number, max: number): SettingType<number> {
  return {
    label: `integer (${min}-${max})`,
    parse(raw) {
      const text = typeof raw === 'number' ? String(raw) : typeof raw === 'string' ? raw.trim() : '';
      if (!/^-?\d+$/.test(text)) return fail(`must be a whole number between ${min} and ${max}`);
      const value = Number(text);
      if (value < min || value > max) return fail(`must be between ${min} and ${max}`);
      return ok(value);
    },
  };
}

export function boolean(): SettingType<boolean> {
  return {
    label: 'boolean (true/false)',
    parse(raw) {
      if (typeof raw === 'boolean') return ok(raw);
      const text = typeof raw === 'string' ? raw.trim().toLowerCase() : '';
      if (['true', '1', 'yes', 'on'].includes(text)) return ok(true);
      if (['false', '0', 'no', 'off'].includes(text)) return ok(false);
      return fail('must be true or false');
    },
  };
}

export function text(options: { minLength?: number; pattern?: RegExp; hint?: string } = {}): SettingType<string> {
  return {
    label: 'string',
    parse(raw) {
      if (typeof raw !== 'string') return fail('must be a string');
      const value = raw.trim();
      if (options.minLength !== undefined && value.length < options.minLength) {
        return fail(`must be at least ${options.minLength} characters long`);
      }
      if (options.pattern && !options.pattern.test(value)) return fail(options.hint ?? 'has an invalid format');
      return ok(value);
    },
  };
}

export function oneOf<const V extends string>(values: readonly V[]): SettingType<V> {
  return {
    label: values.join(' | '),
    parse(raw) {
      const value = typeof raw === 'string' ? raw.trim() : raw;
      if (typeof value === 'string' && (values as readonly string[]).includes(value)) return ok(value as V);
      return fail(`must be one of: ${values.join(', ')}`);
    },
  };
}

export function url(protocols: readonly string[]): SettingType<string> {
  return {
    label: `URL (${protocols.join(', ')})`,
    parse(raw) {
      if (typeof raw !== 'string') return fail('must be a URL');
      try {
        const parsed = new URL(raw.trim());
        if (!protocols.includes(parsed.protocol.replace(/:$/, ''))) {
          return fail(`must be a URL starting with ${protocols.map((p) => `${p}://`).join(' or ')}`);
        }
        return ok(raw.trim().replace(/\/+$/, ''));
      } catch {
        return fail('must be a valid URL');
      }
    },
  };
}

export function host(): SettingType<string> {
  return {
    label: 'IP address or host name',
    parse(raw) {
      if (typeof raw !== 'string') return fail('must be an IP address or host name');
      const value = raw.trim();
      if (net.isIP(value) || /^[a-zA-Z0-9]([a-zA-Z0-9.-]{0,252})$/.test(value)) return ok(value);
      return fail('must be an IP address or host name');
    },
  };
}

/**
 * Express "trust proxy" setting: empty (trust nobody), a hop count, or a
 * comma-separated list of addresses, CIDR ranges and the names loopback,
 * linklocal, uniquelocal.
 */
export function trustProxy(): SettingType<string> {
  const names = ['loopback', 'linklocal', 'uniquelocal'];
  return {
    label: 'empty, hop count, or list of IPs/CIDRs',
    parse(raw) {
      const value = typeof raw === 'number' ? String(raw) : typeof raw === 'string' ? raw.trim() : null;
      if (value === null) return fail('must be a string');
      if (value === '' || /^\d{1,2}$/.test(value)) return ok(value);
      for (const item of value.split(',').map((s) => s.trim())) {
        const [address, bits, extra] = item.split('/');
        const family = net.isIP(address ?? '');
        const validBits = bits === undefined || (/^\d+$/.test(bits) && Number(bits) <= (family === 6 ? 128 : 32));
        if (!(names.includes(item) || (family !== 0 && validBits && extra === undefined))) {
          return fail(`"${item}" is not an IP address, CIDR range or one of ${names.join(', ')}`);
        }
      }
      return ok(value);
    },
  };
}
