import { execFile, spawn, type ChildProcess } from 'node:child_process';
import crypto from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { Attribute, Change, Client } from 'ldapts';
import { freePort } from './process';

/**
 * A real OpenLDAP server (Debian's `slapd`, apt package `slapd`; the
 * certificates are made with the `openssl` command) for the LDAP sign-in
 * tests: started as a child process in its own process group, with its
 * own temporary slapd.conf, mdb database and certificates, listening only
 * on 127.0.0.1 (ldap:// with StartTLS, and ldaps://). It runs as whoever
 * runs the tests (root or a plain user): no `-u`/`-g`, everything it
 * touches is in its temporary folder.
 *
 * The tree (BASE_DN = dc=example,dc=org):
 *   ou=service   cn=vclerk-service (the service account, may read people and groups)
 *   ou=people    alice, bob, carol, "Doe, John" (uid jdoe), two people sharing
 *                one e-mail address, and "dana", an Active Directory look-alike
 *                (sAMAccountName and a binary objectGUID from a small test schema)
 *   ou=groups    groupOfNames vclerk-admins, vclerk-clerks, vclerk-compliance
 *                (the memberof overlay keeps the people's memberOf up to date),
 *                groupOfUniqueNames legacy-clerks (uniqueMember)
 * Anonymous users may only bind; a person may read their own entry.
 */

const execFileAsync = promisify(execFile);

export const BASE_DN = 'dc=example,dc=org';
export const ROOT_DN = `cn=admin,${BASE_DN}`;
export const SERVICE_DN = `cn=vclerk-service,ou=service,${BASE_DN}`;
export const PEOPLE_DN = `ou=people,${BASE_DN}`;
export const GROUPS_DN = `ou=groups,${BASE_DN}`;

export interface SeedPerson {
  uid: string;
  /** The entry's RDN; `uid=<uid>` unless given. */
  rdn?: string;
  cn: string;
  displayName?: string;
  mail?: string;
  password: string;
  groups: string[];
  /** Active Directory look-alike: sAMAccountName and objectGUID (16 bytes). */
  ad?: { sAMAccountName: string; objectGUID: Buffer };
}

export const PEOPLE: Record<string, SeedPerson> = {
  alice: { uid: 'alice', cn: 'Alice Archer', displayName: 'Alice Archer', mail: 'Alice@Example.org', password: 'alice-Secret-1', groups: ['vclerk-admins', 'vclerk-clerks'] },
  bob: { uid: 'bob', cn: 'Bob Baker', mail: 'bob@example.org', password: 'bob (Secret) *2', groups: ['vclerk-clerks'] },
  carol: { uid: 'carol', cn: 'Carol Clark', mail: 'carol@example.org', password: 'carol-Secret-3', groups: [] },
  jdoe: { uid: 'jdoe', rdn: 'cn=Doe\\, John', cn: 'Doe, John', mail: 'jdoe@example.org', password: 'jdoe-Secret-4', groups: ['vclerk-compliance'] },
  twin1: { uid: 'twin1', cn: 'Twin One', mail: 'twins@example.org', password: 'twin-Secret-5', groups: [] },
  twin2: { uid: 'twin2', cn: 'Twin Two', mail: 'twins@example.org', password: 'twin-Secret-6', groups: [] },
  dana: {
    uid: 'dana',
    cn: 'Dana Dorn',
    displayName: 'Dana Dorn (AD)',
    mail: 'dana@example.org',
    password: 'dana-Secret-7',
    groups: ['vclerk-clerks'],
    ad: { sAMAccountName: 'ddorn', objectGUID: Buffer.from('00112233445566778899aabbccddeeff', 'hex') },
  },
};

export const GROUPS = ['vclerk-admins', 'vclerk-clerks', 'vclerk-compliance'];
/** A groupOfUniqueNames (uniqueMember) with bob and jdoe. */
export const LEGACY_GROUP = 'legacy-clerks';

export const personDn = (uid: string): string => `${PEOPLE[uid]?.rdn ?? `uid=${uid}`},${PEOPLE_DN}`;
export const groupDn = (cn: string): string => `cn=${cn},${GROUPS_DN}`;

export interface Slapd {
  /** ldap://127.0.0.1:<port> (StartTLS offered). */
  url: string;
  /** ldaps://127.0.0.1:<port>. */
  ldapsUrl: string;
  /** The throwaway CA that signed the server certificate (PEM). */
  caPem: string;
  /** Another CA that signed nothing here (for wrong-CA tests). */
  otherCaPem: string;
  servicePassword: string;
  addToGroup(group: string, uid: string): Promise<void>;
  removeFromGroup(group: string, uid: string): Promise<void>;
  deleteUser(uid: string): Promise<void>;
  /** Adds a person (RDN uid=<uid>) and puts them in their groups. */
  addUser(person: SeedPerson): Promise<void>;
  setPassword(uid: string, password: string): Promise<void>;
  /** Everything slapd wrote to stdout/stderr. */
  output(): string;
  stop(): Promise<void>;
}

function ssha(password: string): string {
  const salt = crypto.randomBytes(8);
  const digest = crypto.createHash('sha1').update(password).update(salt).digest();
  return `{SSHA}${Buffer.concat([digest, salt]).toString('base64')}`;
}

function slapdBinary(): string {
  for (const candidate of ['/usr/sbin/slapd', '/usr/local/sbin/slapd']) if (fs.existsSync(candidate)) return candidate;
  throw new Error('slapd is not installed: apt-get install -y slapd ldap-utils');
}

async function openssl(dir: string, args: string[]): Promise<void> {
  await execFileAsync('openssl', args, { cwd: dir });
}

/** A CA and a server certificate for 127.0.0.1/localhost signed by it, plus an unrelated CA. */
async function makeCertificates(dir: string): Promise<void> {
  const ec = ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes'];
  const caExt = ['-addext', 'basicConstraints=critical,CA:TRUE', '-addext', 'keyUsage=critical,keyCertSign,cRLSign'];
  await Promise.all([
    openssl(dir, ['req', '-x509', ...ec, '-keyout', 'ca.key', '-out', 'ca.pem', '-days', '2', '-subj', '/CN=VClerk test CA', ...caExt]),
    openssl(dir, ['req', '-x509', ...ec, '-keyout', 'other-ca.key', '-out', 'other-ca.pem', '-days', '2', '-subj', '/CN=VClerk test CA', ...caExt]),
    openssl(dir, ['req', ...ec, '-keyout', 'server.key', '-out', 'server.csr', '-subj', '/CN=127.0.0.1']),
  ]);
  fs.writeFileSync(
    path.join(dir, 'server.ext'),
    'basicConstraints=CA:FALSE\nkeyUsage=critical,digitalSignature\nextendedKeyUsage=serverAuth\nsubjectAltName=IP:127.0.0.1,DNS:localhost\n',
  );
  await openssl(dir, ['x509', '-req', '-in', 'server.csr', '-CA', 'ca.pem', '-CAkey', 'ca.key', '-CAcreateserial', '-out', 'server.pem', '-days', '2', '-extfile', 'server.ext']);
}

/** Active Directory look-alike attributes (binary objectGUID with octet string equality), under OpenLDAP's experimental arc. */
const AD_SCHEMA = `
attributetype ( 1.3.6.1.4.1.4203.666.11.90.1 NAME 'objectGUID'
  EQUALITY octetStringMatch SYNTAX 1.3.6.1.4.1.1466.115.121.1.40 SINGLE-VALUE )
attributetype ( 1.3.6.1.4.1.4203.666.11.90.2 NAME 'sAMAccountName'
  EQUALITY caseIgnoreMatch SYNTAX 1.3.6.1.4.1.1466.115.121.1.15 SINGLE-VALUE )
objectclass ( 1.3.6.1.4.1.4203.666.11.90.3 NAME 'vclerkAdLike' AUXILIARY
  MAY ( objectGUID $ sAMAccountName ) )
`;

function config(dir: string, servicePassword: string): string {
  const q = (p: string) => `"${path.join(dir, p)}"`;
  return `
include /etc/ldap/schema/core.schema
include /etc/ldap/schema/cosine.schema
include /etc/ldap/schema/inetorgperson.schema
include /etc/ldap/schema/nis.schema
include ${q('ad.schema')}
modulepath /usr/lib/ldap
moduleload back_mdb
moduleload memberof
pidfile ${q('slapd.pid')}
argsfile ${q('slapd.args')}
TLSCACertificateFile ${q('ca.pem')}
TLSCertificateFile ${q('server.pem')}
TLSCertificateKeyFile ${q('server.key')}

database mdb
maxsize 16777216
suffix "${BASE_DN}"
rootdn "${ROOT_DN}"
rootpw ${ssha(servicePassword + '-root')}
directory ${q('data')}
index objectClass eq
index uid,mail,member,uniqueMember eq

overlay memberof
memberof-group-oc groupOfNames
memberof-member-ad member
memberof-memberof-ad memberOf
memberof-refint TRUE

access to attrs=userPassword
  by self =xw
  by anonymous auth
  by * none
access to dn.subtree="${BASE_DN}"
  by dn.exact="${SERVICE_DN}" read
  by self read
  by * none
`;
}

function personAttributes(person: SeedPerson): Attribute[] {
  const attributes: Attribute[] = [
    new Attribute({ type: 'objectClass', values: ['inetOrgPerson', ...(person.ad ? ['vclerkAdLike'] : [])] }),
    new Attribute({ type: 'uid', values: [person.uid] }),
    new Attribute({ type: 'cn', values: [person.cn] }),
    new Attribute({ type: 'sn', values: [person.cn.split(/[ ,]/)[0]!] }),
    new Attribute({ type: 'userPassword', values: [ssha(person.password)] }),
  ];
  if (person.displayName) attributes.push(new Attribute({ type: 'displayName', values: [person.displayName] }));
  if (person.mail) attributes.push(new Attribute({ type: 'mail', values: [person.mail] }));
  if (person.ad) {
    attributes.push(new Attribute({ type: 'sAMAccountName', values: [person.ad.sAMAccountName] }));
    attributes.push(new Attribute({ type: 'objectGUID', values: [person.ad.objectGUID] }));
  }
  return attributes;
}

async function seed(client: Client): Promise<void> {
  await client.add(BASE_DN, { objectClass: ['top', 'dcObject', 'organization'], dc: 'example', o: 'Example Org' });
  for (const ou of ['service', 'people', 'groups']) await client.add(`ou=${ou},${BASE_DN}`, { objectClass: ['organizationalUnit'], ou });
  for (const person of Object.values(PEOPLE)) await client.add(personDn(person.uid), personAttributes(person));
  for (const group of GROUPS) {
    const members = Object.values(PEOPLE).filter((p) => p.groups.includes(group)).map((p) => personDn(p.uid));
    await client.add(groupDn(group), { objectClass: ['groupOfNames'], cn: group, member: members });
  }
  await client.add(groupDn(LEGACY_GROUP), { objectClass: ['groupOfUniqueNames'], cn: LEGACY_GROUP, uniqueMember: [personDn('bob'), personDn('jdoe')] });
}

async function rootClient<T>(url: string, rootPassword: string, work: (client: Client) => Promise<T>): Promise<T> {
  const client = new Client({ url, timeout: 5000, connectTimeout: 5000 });
  try {
    await client.bind(ROOT_DN, rootPassword);
    return await work(client);
  } finally {
    await client.unbind().catch(() => undefined);
  }
}

function killGroup(child: ChildProcess, signal: NodeJS.Signals): void {
  if (child.pid === undefined || child.exitCode !== null || child.signalCode !== null) return;
  try {
    process.kill(-child.pid, signal);
  } catch {
    /* already gone */
  }
}

async function launch(dir: string, confPath: string): Promise<{ child: ChildProcess; port: number; ldapsPort: number; output: () => string }> {
  const port = await freePort();
  const ldapsPort = await freePort();
  // -d 0: stay in the foreground (no fork, no detach) without debug output; no -u/-g.
  const child = spawn(slapdBinary(), ['-f', confPath, '-h', `ldap://127.0.0.1:${port}/ ldaps://127.0.0.1:${ldapsPort}/`, '-d', '0'], {
    cwd: dir,
    detached: true,
    stdio: ['ignore', 'pipe', 'pipe'],
    env: { PATH: process.env.PATH ?? '/usr/sbin:/usr/bin:/sbin:/bin', LANG: 'C' },
  });
  let output = '';
  child.stdout!.on('data', (chunk: Buffer) => (output += chunk.toString()));
  child.stderr!.on('data', (chunk: Buffer) => (output += chunk.toString()));
  return { child, port, ldapsPort, output: () => output };
}

/** Waits until slapd answers a root DSE search, or fails when it exits first or takes over 10 s. */
async function waitReady(url: string, child: ChildProcess, output: () => string): Promise<void> {
  const deadline = Date.now() + 10000;
  for (;;) {
    if (child.exitCode !== null || child.signalCode !== null) throw new Error(`slapd exited (${child.exitCode ?? child.signalCode}):\n${output()}`);
    const client = new Client({ url, timeout: 1000, connectTimeout: 1000 });
    try {
      await client.search('', { scope: 'base', attributes: ['namingContexts'] });
      return;
    } catch (err) {
      if (Date.now() > deadline) throw new Error(`slapd did not answer on ${url} within 10 s (${(err as Error).message}):\n${output()}`);
    } finally {
      await client.unbind().catch(() => undefined);
    }
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}

/** Starts a seeded slapd; call `stop()` when done (an exit hook kills it too). */
export async function startSlapd(): Promise<Slapd> {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'vclerk-slapd-'));
  const servicePassword = `svc-${crypto.randomBytes(9).toString('base64url')}`;
  const rootPassword = `${servicePassword}-root`;
  let running: Awaited<ReturnType<typeof launch>> | undefined;
  const onExit = () => {
    if (running) killGroup(running.child, 'SIGKILL');
    fs.rmSync(dir, { recursive: true, force: true });
  };
  process.once('exit', onExit);
  try {
    fs.mkdirSync(path.join(dir, 'data'));
    fs.writeFileSync(path.join(dir, 'ad.schema'), AD_SCHEMA);
    await makeCertificates(dir);
    const confPath = path.join(dir, 'slapd.conf');
    fs.writeFileSync(confPath, config(dir, servicePassword));
    // Two ports picked free but not held: on a lost race slapd exits at once, so try again.
    for (let attempt = 1; ; attempt++) {
      running = await launch(dir, confPath);
      try {
        await waitReady(`ldap://127.0.0.1:${running.port}`, running.child, running.output);
        break;
      } catch (err) {
        killGroup(running.child, 'SIGKILL');
        if (attempt >= 3) throw err;
      }
    }
    const url = `ldap://127.0.0.1:${running.port}`;
    await rootClient(url, rootPassword, async (client) => {
      await seed(client);
      await client.add(SERVICE_DN, { objectClass: ['organizationalRole', 'simpleSecurityObject'], cn: 'vclerk-service', userPassword: ssha(servicePassword) });
    });
    const asRoot = <T>(work: (client: Client) => Promise<T>) => rootClient(url, rootPassword, work);
    const member = (group: string) => (group === LEGACY_GROUP ? 'uniqueMember' : 'member');
    const started = running;
    return {
      url,
      ldapsUrl: `ldaps://127.0.0.1:${started.ldapsPort}`,
      caPem: fs.readFileSync(path.join(dir, 'ca.pem'), 'utf8'),
      otherCaPem: fs.readFileSync(path.join(dir, 'other-ca.pem'), 'utf8'),
      servicePassword,
      output: started.output,
      addToGroup: (group, uid) =>
        asRoot((c) => c.modify(groupDn(group), new Change({ operation: 'add', modification: new Attribute({ type: member(group), values: [personDn(uid)] }) }))),
      removeFromGroup: (group, uid) =>
        asRoot((c) => c.modify(groupDn(group), new Change({ operation: 'delete', modification: new Attribute({ type: member(group), values: [personDn(uid)] }) }))),
      deleteUser: (uid) => asRoot((c) => c.del(personDn(uid))),
      addUser: (person) =>
        asRoot(async (c) => {
          await c.add(`uid=${person.uid},${PEOPLE_DN}`, personAttributes(person));
          for (const group of person.groups) {
            await c.modify(groupDn(group), new Change({ operation: 'add', modification: new Attribute({ type: member(group), values: [`uid=${person.uid},${PEOPLE_DN}`] }) }));
          }
        }),
      setPassword: (uid, password) =>
        asRoot((c) => c.modify(personDn(uid), new Change({ operation: 'replace', modification: new Attribute({ type: 'userPassword', values: [ssha(password)] }) }))),
      async stop() {
        const { child } = started;
        if (child.exitCode === null && child.signalCode === null) {
          const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
          killGroup(child, 'SIGTERM');
          const timer = setTimeout(() => killGroup(child, 'SIGKILL'), 3000);
          await exited;
          clearTimeout(timer);
        }
        process.removeListener('exit', onExit);
        fs.rmSync(dir, { recursive: true, force: true });
      },
    };
  } catch (err) {
    onExit();
    process.removeListener('exit', onExit);
    throw err;
  }
}
