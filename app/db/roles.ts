import type { Knex } from 'knex';

/**
 * The two database roles VClerk runs with, so that "append-only" holds
 * against the app's own credentials too:
 *
 * - the OWNER role owns the database's schemas and every table, function
 *   and sequence in them; migrations and pg-boss's schema changes run as it;
 * - the APP role is what the running app connects as: no superuser, no
 *   CREATEDB/CREATEROLE/BYPASSRLS, owner of nothing. It may read and write
 *   the ordinary tables, but on the append-only ones only what APPEND_ONLY
 *   grants (the audit trail: INSERT and SELECT). Only a table's owner may
 *   disable its triggers, so the app role cannot switch off the triggers
 *   that refuse UPDATE, DELETE and TRUNCATE either.
 *
 * `ensureRoles` needs a role that may create roles and change owners (the
 * embedded cluster's superuser, or DATABASE_OWNER_URL's role under
 * compose); `grantAppRole` runs as the owner after every migration, so the
 * grants always match the tables that exist.
 */
export interface RoleCredentials {
  name: string;
  password: string;
}

/** Tables the app role may only read and add to (plus DELETE where named: privacy_texts rows go with their organisation). */
export const APPEND_ONLY: Readonly<Record<string, readonly ('SELECT' | 'INSERT' | 'DELETE')[]>> = {
  audit_events: ['SELECT', 'INSERT'],
  audit_checkpoints: ['SELECT', 'INSERT'],
  privacy_texts: ['SELECT', 'INSERT', 'DELETE'],
  knex_migrations: ['SELECT'],
  knex_migrations_lock: ['SELECT'],
};

/** Schemas whose objects the owner owns and the app role uses. */
export const SCHEMAS = ['public', 'pgboss'] as const;

/** Any name PostgreSQL accepts (63 bytes); it is always quoted. */
const ROLE_NAME = /^[^\0]{1,63}$/;

export function ident(name: string): string {
  return `"${name.replace(/"/g, '""')}"`;
}

function literal(value: string): string {
  return `'${value.replace(/'/g, "''")}'`;
}

function checkName(name: string): string {
  if (!ROLE_NAME.test(name)) throw new Error(`"${name}" is not a valid database role name`);
  return name;
}

async function roleExists(knex: Knex, name: string): Promise<boolean> {
  const { rows } = await knex.raw('SELECT 1 FROM pg_roles WHERE rolname = ?', [name]);
  return rows.length > 0;
}

/**
 * Creates a login role without any special attribute when it is missing;
 * `resetPassword` also sets the password of an existing one (the embedded
 * database, whose passwords VClerk keeps). Never touches any other role.
 */
export async function ensureLoginRole(admin: Knex, role: RoleCredentials, options: { resetPassword?: boolean } = {}): Promise<'created' | 'existed'> {
  const name = ident(checkName(role.name));
  const attributes = `LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE NOREPLICATION NOBYPASSRLS NOINHERIT PASSWORD ${literal(role.password)}`;
  if (!(await roleExists(admin, role.name))) {
    try {
      await withoutSql(admin.raw(`CREATE ROLE ${name} ${attributes}`), `could not create the database role ${role.name}`);
      return 'created';
    } catch (err) {
      // Two starts at once: the other one created it.
      if ((err as { code?: string }).code !== '42710') throw err;
    }
  }
  if (options.resetPassword) await withoutSql(admin.raw(`ALTER ROLE ${name} ${attributes}`), `could not set the password of the database role ${role.name}`);
  return 'existed';
}

/**
 * Runs a statement that carries a password: knex puts the whole SQL in
 * front of an error's message, which would put the password in the log.
 * The error thrown instead keeps PostgreSQL's code and message only.
 */
async function withoutSql(statement: PromiseLike<unknown>, what: string): Promise<void> {
  try {
    await statement;
  } catch (err) {
    const pg = err as { code?: string; message?: string };
    const message = String(pg.message ?? '').split(' - ').pop();
    throw Object.assign(new Error(`${what}: ${message}`), { code: pg.code });
  }
}

/**
 * Makes `owner` the owner of the database, of the schemas VClerk uses and
 * of every table, view, sequence, function and type in them (existing
 * installations created them as the superuser). Needs a superuser.
 */
export async function transferOwnership(admin: Knex, database: string, owner: string): Promise<void> {
  checkName(owner);
  await admin.raw(`ALTER DATABASE ${ident(database)} OWNER TO ${ident(owner)}`);
  await admin.raw(
    `DO $$
    DECLARE
      r record;
    BEGIN
      FOR r IN SELECT nspname FROM pg_namespace WHERE nspname = ANY (ARRAY[${SCHEMAS.map(literal).join(', ')}]) AND nspowner <> ${literal(owner)}::regrole LOOP
        EXECUTE format('ALTER SCHEMA %I OWNER TO %I', r.nspname, ${literal(owner)});
      END LOOP;
      -- Tables first: ALTER TABLE takes their indexes and owned sequences along.
      FOR r IN
        SELECT c.oid::regclass AS rel, c.relkind FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
        WHERE n.nspname = ANY (ARRAY[${SCHEMAS.map(literal).join(', ')}]) AND c.relkind IN ('r', 'p', 'v', 'm', 'f')
          AND c.relowner <> ${literal(owner)}::regrole
      LOOP
        EXECUTE format('ALTER %s %s OWNER TO %I', CASE r.relkind WHEN 'v' THEN 'VIEW' WHEN 'm' THEN 'MATERIALIZED VIEW' WHEN 'f' THEN 'FOREIGN TABLE' ELSE 'TABLE' END, r.rel, ${literal(owner)});
      END LOOP;
      FOR r IN
        SELECT c.oid::regclass AS rel FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
        WHERE n.nspname = ANY (ARRAY[${SCHEMAS.map(literal).join(', ')}]) AND c.relkind = 'S' AND c.relowner <> ${literal(owner)}::regrole
      LOOP
        EXECUTE format('ALTER SEQUENCE %s OWNER TO %I', r.rel, ${literal(owner)});
      END LOOP;
      FOR r IN
        SELECT p.oid::regprocedure AS proc FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace
        WHERE n.nspname = ANY (ARRAY[${SCHEMAS.map(literal).join(', ')}]) AND p.proowner <> ${literal(owner)}::regrole
      LOOP
        EXECUTE format('ALTER ROUTINE %s OWNER TO %I', r.proc, ${literal(owner)});
      END LOOP;
      FOR r IN
        SELECT t.oid::regtype AS typ FROM pg_type t JOIN pg_namespace n ON n.oid = t.typnamespace
        WHERE n.nspname = ANY (ARRAY[${SCHEMAS.map(literal).join(', ')}]) AND t.typtype IN ('e', 'd', 'r') AND t.typowner <> ${literal(owner)}::regrole
      LOOP
        EXECUTE format('ALTER TYPE %s OWNER TO %I', r.typ, ${literal(owner)});
      END LOOP;
    END $$`,
  );
}

/**
 * As the owner: what the app role may do. Everything on ordinary tables of
 * the schemas, only APPEND_ONLY's privileges on the append-only ones,
 * sequences by USAGE, and the same by default for tables the owner creates
 * later (migrations re-run this anyway). pg-boss's queue functions create
 * a table per queue: they run as their owner (SECURITY DEFINER), so the app
 * role can add a queue without owning anything.
 */
export async function grantAppRole(owner: Knex, app: string, database: string): Promise<void> {
  const role = ident(checkName(app));
  await owner.transaction(async (trx) => {
    await trx.raw(`GRANT CONNECT ON DATABASE ${ident(database)} TO ${role}`);
    for (const schema of SCHEMAS) {
      const exists = (await trx.raw('SELECT 1 FROM pg_namespace WHERE nspname = ?', [schema])).rows.length > 0;
      if (!exists) continue;
      const s = ident(schema);
      await trx.raw(`REVOKE CREATE ON SCHEMA ${s} FROM PUBLIC`);
      await trx.raw(`REVOKE ALL ON SCHEMA ${s} FROM ${role}`);
      await trx.raw(`GRANT USAGE ON SCHEMA ${s} TO ${role}`);
      await trx.raw(`GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA ${s} TO ${role}`);
      await trx.raw(`REVOKE TRUNCATE, REFERENCES, TRIGGER ON ALL TABLES IN SCHEMA ${s} FROM ${role}`);
      await trx.raw(`GRANT USAGE, SELECT ON ALL SEQUENCES IN SCHEMA ${s} TO ${role}`);
      await trx.raw(`ALTER DEFAULT PRIVILEGES IN SCHEMA ${s} GRANT SELECT, INSERT, UPDATE, DELETE ON TABLES TO ${role}`);
      await trx.raw(`ALTER DEFAULT PRIVILEGES IN SCHEMA ${s} GRANT USAGE, SELECT ON SEQUENCES TO ${role}`);
    }
    for (const [table, allowed] of Object.entries(APPEND_ONLY)) {
      const exists = (await trx.raw('SELECT to_regclass(?) AS t', [`public.${table}`])).rows[0].t;
      if (!exists) continue;
      await trx.raw(`REVOKE ALL ON TABLE public.${ident(table)} FROM PUBLIC, ${role}`);
      await trx.raw(`GRANT ${allowed.join(', ')} ON TABLE public.${ident(table)} TO ${role}`);
    }
    const queueFunctions = (await trx.raw(`SELECT p.oid::regprocedure::text AS proc FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace WHERE n.nspname = 'pgboss' AND p.proname IN ('create_queue', 'delete_queue')`)).rows as { proc: string }[];
    for (const { proc } of queueFunctions) {
      await trx.raw(`ALTER FUNCTION ${proc} SECURITY DEFINER SET search_path = pg_catalog, pgboss`);
      await trx.raw(`REVOKE ALL ON FUNCTION ${proc} FROM PUBLIC`);
      await trx.raw(`GRANT EXECUTE ON FUNCTION ${proc} TO ${role}`);
    }
  });
}

export interface RoleInspection {
  role: string;
  superuser: boolean;
  /** The role owns audit_events (and so may disable its triggers). */
  ownsAuditTrail: boolean;
  /** The role may UPDATE, DELETE or TRUNCATE audit_events by privilege (the triggers still refuse, but only while enabled). */
  mayChangeAuditTrail: boolean;
}

/** What the connected role may do to the audit trail: the basis of the start-up warning and /admin/status. */
export async function inspectRole(knex: Knex): Promise<RoleInspection> {
  const { rows } = await knex.raw(
    `SELECT current_user AS role, r.rolsuper AS superuser,
       COALESCE(pg_has_role(current_user, c.relowner, 'USAGE'), false) AS owns,
       COALESCE(has_table_privilege(c.oid, 'UPDATE') OR has_table_privilege(c.oid, 'DELETE') OR has_table_privilege(c.oid, 'TRUNCATE'), false) AS may_change
     FROM pg_roles r LEFT JOIN pg_class c ON c.oid = to_regclass('public.audit_events')
     WHERE r.rolname = current_user`,
  );
  const row = rows[0] as { role: string; superuser: boolean; owns: boolean; may_change: boolean };
  return { role: row.role, superuser: row.superuser, ownsAuditTrail: row.owns, mayChangeAuditTrail: row.superuser || row.owns || row.may_change };
}

/** Whether the connected role may create roles (superuser or CREATEROLE). */
export async function mayCreateRoles(knex: Knex): Promise<boolean> {
  const { rows } = await knex.raw('SELECT rolsuper OR rolcreaterole AS may FROM pg_roles WHERE rolname = current_user');
  return Boolean(rows[0]?.may);
}
