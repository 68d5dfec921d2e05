import assert from 'node:assert/strict';
import { SealedSecretError, sealerFor } from '../app/security/sealed';

describe('sealed secrets (an LDAP service password, an OIDC client secret in the database)', () => {
  const sealer = sealerFor('session secret one', 'sso');

  it('opens what it sealed, for the same row only; a new nonce each time', () => {
    const a = sealer.seal('s3cret pässword', 'provider-1');
    const b = sealer.seal('s3cret pässword', 'provider-1');
    assert.notEqual(a, b);
    assert.match(a, /^v1\.[A-Za-z0-9_-]+$/);
    assert.doesNotMatch(a, /s3cret/);
    assert.equal(sealer.open(a, 'provider-1'), 's3cret pässword');
    assert.throws(() => sealer.open(a, 'provider-2'), SealedSecretError);
  });

  it('refuses another purpose, another session secret, a changed byte and garbage', () => {
    const sealed = sealer.seal('x', 'p');
    assert.throws(() => sealerFor('session secret one', 'other').open(sealed, 'p'), SealedSecretError);
    assert.throws(() => sealerFor('session secret two', 'sso').open(sealed, 'p'), SealedSecretError);
    const bytes = Buffer.from(sealed.slice(3), 'base64url');
    bytes[14] = bytes[14]! ^ 1;
    assert.throws(() => sealer.open(`v1.${bytes.toString('base64url')}`, 'p'), SealedSecretError);
    for (const junk of ['', 'v1.', 'v2.abc', 'v1.AAAA', 'plain text']) assert.throws(() => sealer.open(junk, 'p'), SealedSecretError);
  });
});
