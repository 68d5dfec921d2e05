/** Only same-site paths: never redirect to another origin ("//host" or "/\\host"). */
export function safeReturnPath(value: unknown): string {
  if (typeof value !== 'string' || !value.startsWith('/') || value.startsWith('//') || value.startsWith('/\\')) return '/';
  return value.length > 2000 ? '/' : value;
}
