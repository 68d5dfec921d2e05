import assert from 'node:assert/strict';
import { checkPassword } from '../app/security/password-policy';
import { hashPassword, verifyPassword } from '../app/security/passwords';

describe('password policy (OWASP ASVS 5)', () => {
  it('needs at least 12 characters and allows at least 128', () => {
    assert.equal(checkPassword('short pass1'), 'too_short');
    assert.equal(checkPassword('eleven chars'), null);
    assert.equal(checkPassword('x'.repeat(100) + 'y'.repeat(28)), null);
    assert.equal(checkPassword('ab'.repeat(129)), 'too_long');
  });

  it('has no composition rules: lower-case words pass', () => {
    assert.equal(checkPassword('correct horse battery staple'), null);
    assert.equal(checkPassword('ñandú über straße'), null);
  });

  it('counts characters, not bytes', () => {
    assert.equal(checkPassword('ßßßßßä'), 'too_short');
  });

  it('refuses common passwords whatever their case', () => {
    assert.equal(checkPassword('1234567890123'.slice(0, 12)), 'too_common');
    assert.equal(checkPassword('QWERTYUIOPASDFGHJKL'.slice(0, 12)), checkPassword('qwertyuiopas'));
    assert.equal(checkPassword('aaaaaaaaaaaaaaaa'), 'too_common');
    assert.equal(checkPassword('abcabcabcabcabc'), 'too_common');
  });

  it('refuses passwords that are mostly the user\'s name or e-mail', () => {
    assert.equal(checkPassword('anna.schmidt@example.org', { email: 'anna.schmidt@example.org' }), 'too_personal');
    assert.equal(checkPassword('AnnaSchmidt2024', { name: 'Anna Schmidt' }), 'too_personal');
    assert.equal(checkPassword('vclerkvclerk1', {}), 'too_personal');
    assert.equal(checkPassword('anna likes green tea', { name: 'Anna Schmidt' }), null);
  });

  it('hashes with argon2id and verifies', async () => {
    const hash = await hashPassword('correct horse battery staple');
    assert.match(hash, /^\$argon2id\$v=19\$m=19456,t=2,p=1\$/);
    assert.equal(await verifyPassword(hash, 'correct horse battery staple'), true);
    assert.equal(await verifyPassword(hash, 'correct horse battery stapl'), false);
    assert.equal(await verifyPassword('not a hash', 'x'), false);
  });
});
