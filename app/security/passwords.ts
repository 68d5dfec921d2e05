import { hash, verify } from '@node-rs/argon2';

/**
 * argon2id with the OWASP-recommended parameters (19 MiB memory, 2
 * iterations, 1 lane), which are @node-rs/argon2's defaults, stated here so
 * that a library upgrade cannot weaken them silently.
 */
const OPTIONS = { algorithm: 2 /* Argon2id */, memoryCost: 19456, timeCost: 2, parallelism: 1 } as const;

export function hashPassword(password: string): Promise<string> {
  return hash(password, OPTIONS);
}

/** How many password verifications (argon2 work) this process has run: brute-force tests count evaluated attempts with it. */
export const passwordVerifications = { count: 0 };

export async function verifyPassword(passwordHash: string, password: string): Promise<boolean> {
  passwordVerifications.count += 1;
  try {
    return await verify(passwordHash, password);
  } catch {
    return false;
  }
}

/**
 * A hash to verify against when the account does not exist, so that an
 * unknown e-mail costs as much time as a wrong password (no enumeration).
 */
let dummy: Promise<string> | undefined;
export async function verifyAgainstDummy(password: string): Promise<false> {
  dummy ??= hashPassword('vclerk-dummy-password-for-timing');
  await verifyPassword(await dummy, password);
  return false;
}
