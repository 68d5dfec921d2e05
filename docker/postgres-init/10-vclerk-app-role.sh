#!/bin/sh
# Creates the role the VClerk app runs as (docker-compose.yml mounts this
# directory into the db service's /docker-entrypoint-initdb.d). The postgres
# image runs it once, when it initialises an empty volume, as POSTGRES_USER,
# the superuser that owns VClerk's tables and runs its migrations
# (DATABASE_OWNER_URL). The app role (DATABASE_URL) gets no attribute: it owns
# nothing, and VClerk grants it what it needs after each migration, on the
# audit trail only INSERT and SELECT (app/db/roles.ts). Volumes initialised
# before this script existed: VClerk creates the role itself at start
# (docs/operations.md).
set -eu

APP_USER="${VCLERK_DB_APP_USER:-vclerk_app}"
: "${VCLERK_DB_APP_PASSWORD:?set POSTGRES_APP_PASSWORD in .env}"

psql -v ON_ERROR_STOP=1 --no-psqlrc --username "$POSTGRES_USER" --dbname "${POSTGRES_DB:-$POSTGRES_USER}" \
	-v app_user="$APP_USER" -v app_password="$VCLERK_DB_APP_PASSWORD" <<'SQL'
SELECT format('CREATE ROLE %I LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE NOREPLICATION NOBYPASSRLS NOINHERIT PASSWORD %L', :'app_user', :'app_password')
WHERE NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = :'app_user') \gexec
SELECT format('GRANT CONNECT ON DATABASE %I TO %I', current_database(), :'app_user') \gexec
REVOKE CREATE ON SCHEMA public FROM PUBLIC;
SQL
