import { commonPasswords } from './common-passwords';

/**
 * Password rules after OWASP ASVS 5 (V6.2): at least 12 characters, at
 * least 128 allowed (we allow 256), any characters, no composition rules,
 * no periodic change; refused when it is a common password, one character
 * or a short pattern repeated, or mostly the user's own name, e-mail or
 * the product's name.
 */
export const PASSWORD_MIN = 12;
export const PASSWORD_MAX = 256;

export type PasswordProblem = 'too_short' | 'too_long' | 'too_common' | 'too_personal';

export function checkPassword(password: string, context: { email?: string; name?: string } = {}): PasswordProblem | null {
  const length = [...password].length;
  if (length < PASSWORD_MIN) return 'too_short';
  if (length > PASSWORD_MAX) return 'too_long';
  const lower = password.toLowerCase();
  if (commonPasswords.has(lower) || isRepetition(lower)) return 'too_common';
  const words = ['vclerk', ...(context.email ? [context.email.toLowerCase(), context.email.toLowerCase().split('@')[0]!] : []), ...(context.name ? context.name.toLowerCase().split(/\s+/) : [])]
    .filter((w) => w.length >= 3);
  let rest = lower;
  for (const word of words) rest = rest.split(word).join('');
  if ([...rest].length < 8) return 'too_personal';
  return null;
}

/** "aaaaaaaaaaaa", "abcabcabcabc", "121212121212": a unit of up to 4 characters repeated. */
function isRepetition(value: string): boolean {
  for (let unit = 1; unit <= 4; unit++) {
    const head = value.slice(0, unit);
    if (head.repeat(Math.ceil(value.length / unit)).slice(0, value.length) === value) return true;
  }
  return false;
}
