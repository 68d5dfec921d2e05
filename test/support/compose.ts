import { execFile } from 'node:child_process';
import crypto from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { freePort, root } from './process';

/**
 * docker-compose.yml started for real, the way an IT admin runs it, on the
 * container engine scripts/test-image.sh prepared (podman with its Docker
 * API, or Docker). Each project gets its own directory with a copy of the
 * compose file, the postgres init scripts and a generated .env, and its own
 * project name, so its containers and volumes are found and removed by name.
 */
export const ENGINE = process.env.VCLERK_TEST_ENGINE ?? 'podman';
const COMPOSE = (process.env.VCLERK_TEST_COMPOSE ?? 'docker-compose').split(' ');

export interface Result {
  code: number;
  stdout: string;
  stderr: string;
}

export function run(command: string[], timeoutMs = 300_000): Promise<Result> {
  return new Promise((resolve) => {
    execFile(command[0]!, command.slice(1), { timeout: timeoutMs, maxBuffer: 64 << 20, encoding: 'utf8' }, (error, stdout, stderr) => {
      const code = error ? (typeof (error as { code?: unknown }).code === 'number' ? ((error as { code: number }).code) : 1) : 0;
      resolve({ code, stdout, stderr });
    });
  });
}

export async function must(command: string[], timeoutMs?: number): Promise<string> {
  const result = await run(command, timeoutMs);
  if (result.code !== 0) throw new Error(`${command.join(' ')} exited ${result.code}:\n${result.stderr.slice(-4000)}\n${result.stdout.slice(-2000)}`);
  return result.stdout;
}

export function requiredEnv(name: string): string {
  const value = process.env[name];
  if (!value) throw new Error(`${name} is not set: run the image tests through scripts/test-image.sh`);
  return value;
}

export const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

export class ComposeProject {
  readonly name = `vclerk-ci-${crypto.randomBytes(4).toString('hex')}`;
  readonly dir: string;
  private pump?: NodeJS.Timeout;
  private pumping = false;

  /**
   * A project as an admin would set it up: random database passwords, the
   * web port on a free local port, links and media announced on 127.0.0.1,
   * the given app image and the local PostgreSQL image; health checks run.
   */
  static async create(appImage: string, source = root): Promise<{ project: ComposeProject; base: string }> {
    const port = await freePort();
    const base = `http://127.0.0.1:${port}`;
    const project = new ComposeProject({
      POSTGRES_PASSWORD: randomPassword(),
      POSTGRES_APP_PASSWORD: randomPassword(),
      APP_IMAGE: appImage,
      POSTGRES_IMAGE: requiredEnv('VCLERK_TEST_POSTGRES_IMAGE'),
      VCLERK_PORT: String(port),
      VCLERK_PUBLIC_URL: base,
      VCLERK_MEDIA_ANNOUNCED_ADDRESS: '127.0.0.1',
    }, source);
    project.startHealthChecks();
    return { project, base };
  }

  /** `source`: where docker-compose.yml and docker/postgres-init come from (another version's, for upgrades). */
  constructor(protected env: Record<string, string>, source = root) {
    this.dir = fs.mkdtempSync(path.join(os.tmpdir(), 'vclerk-compose-'));
    this.useFilesOf(source);
    this.writeEnv();
  }

  /**
   * Takes docker-compose.yml and docker/postgres-init from `source`, as an
   * admin does who replaces them when upgrading. Files of versions that
   * named their images literally get the images of APP_IMAGE and
   * POSTGRES_IMAGE instead, as the variables do in today's file.
   */
  useFilesOf(source: string): void {
    const compose = fs.readFileSync(path.join(source, 'docker-compose.yml'), 'utf8')
      .replace(/^(\s+image: )vclerk:local$/m, `$1"${this.env.APP_IMAGE ?? 'vclerk:local'}"`)
      .replace(/^(\s+image: )postgres:16-bookworm$/m, `$1"${this.env.POSTGRES_IMAGE ?? 'postgres:16-bookworm'}"`);
    fs.writeFileSync(path.join(this.dir, 'docker-compose.yml'), compose);
    fs.rmSync(path.join(this.dir, 'docker'), { recursive: true, force: true });
    const init = path.join(source, 'docker', 'postgres-init');
    if (fs.existsSync(init)) fs.cpSync(init, path.join(this.dir, 'docker', 'postgres-init'), { recursive: true });
  }

  /** Changes settings in .env (the next `up` uses them), e.g. another APP_IMAGE. */
  set(values: Record<string, string>): void {
    this.env = { ...this.env, ...values };
    this.writeEnv();
  }

  /** The directory of the compose file and its .env (relative paths in the file start there). */
  protected get projectDir(): string {
    return this.dir;
  }

  protected writeEnv(): void {
    const text = Object.entries(this.env).map(([k, v]) => `${k}=${v}`).join('\n');
    fs.writeFileSync(path.join(this.projectDir, '.env'), `${text}\n`, { mode: 0o600 });
  }

  compose(args: string[], timeoutMs?: number): Promise<Result> {
    return run([...COMPOSE, '--project-name', this.name, '--project-directory', this.projectDir, '--file', path.join(this.projectDir, 'docker-compose.yml'), ...args], timeoutMs);
  }

  async mustCompose(args: string[], timeoutMs?: number): Promise<string> {
    const result = await this.compose(args, timeoutMs);
    if (result.code !== 0) throw new Error(`compose ${args.join(' ')} exited ${result.code}:\n${result.stderr.slice(-4000)}\n${result.stdout.slice(-2000)}`);
    return result.stdout;
  }

  /**
   * Podman runs health checks from systemd timers; where no systemd runs
   * (CI), nothing would run them and `depends_on: service_healthy` would
   * wait forever. Stand in for the timers: run each container's check every
   * two seconds while the project is up. Docker runs its own.
   */
  startHealthChecks(): void {
    if (ENGINE !== 'podman' || this.pump) return;
    this.pump = setInterval(() => {
      if (this.pumping) return;
      this.pumping = true;
      void (async () => {
        const ids = (await run([ENGINE, 'ps', '-q', '--filter', `label=com.docker.compose.project=${this.name}`])).stdout.split('\n').filter(Boolean);
        await Promise.all(ids.map((id) => run([ENGINE, 'healthcheck', 'run', id], 30_000)));
      })().finally(() => { this.pumping = false; });
    }, 2000);
  }

  stopHealthChecks(): void {
    clearInterval(this.pump);
    this.pump = undefined;
  }

  async containerId(service: string): Promise<string> {
    const id = (await this.mustCompose(['ps', '-q', service])).trim().split('\n')[0];
    if (!id) throw new Error(`no container for ${service}`);
    return id;
  }

  async inspect(service: string): Promise<ContainerState> {
    const [info] = JSON.parse(await must([ENGINE, 'inspect', await this.containerId(service)])) as ContainerState[];
    return info!;
  }

  async waitHealthy(service: string, timeoutMs = 180_000): Promise<ContainerState> {
    const deadline = Date.now() + timeoutMs;
    let last: ContainerState | undefined;
    while (Date.now() < deadline) {
      last = await this.inspect(service).catch(() => undefined);
      if (last?.State.Health?.Status === 'healthy') return last;
      await sleep(1000);
    }
    const logs = await this.compose(['logs', '--no-color', '--tail', '60', service]);
    throw new Error(`${service} did not become healthy (${JSON.stringify(last?.State)}):\n${logs.stdout}${logs.stderr}`);
  }

  /** One SQL statement in the db service as the owner; rows as arrays of fields. */
  async sql(statement: string): Promise<string[][]> {
    const out = await this.mustCompose(['exec', '-T', 'db', 'psql', '-X', '-v', 'ON_ERROR_STOP=1', '-U', 'vclerk', '-d', 'vclerk', '-At', '-F', '\t', '-c', statement]);
    return out.split('\n').filter(Boolean).map((line) => line.split('\t'));
  }

  async volumePath(volume: string): Promise<string> {
    return (await must([ENGINE, 'volume', 'inspect', '--format', '{{.Mountpoint}}', `${this.name}_${volume}`])).trim();
  }

  /** Removes the project's containers, networks and volumes (by its name). */
  async destroy(): Promise<void> {
    this.stopHealthChecks();
    await this.compose(['down', '--volumes', '--remove-orphans', '--timeout', '5']);
    fs.rmSync(this.dir, { recursive: true, force: true });
  }
}

export interface ContainerState {
  Id: string;
  Config: { User: string };
  HostConfig: { ReadonlyRootfs: boolean };
  State: {
    Status: string;
    Running: boolean;
    ExitCode: number;
    StartedAt: string;
    FinishedAt: string;
    Health?: { Status: string; Log?: { Start: string; End: string; ExitCode: number }[] };
  };
}

/** The one-time setup link the app logs on its first start. */
export function setupLinkIn(logs: string): string | undefined {
  return /https?:\/\/[^\s"]+\/setup\/[A-Za-z0-9_-]+/.exec(logs)?.[0];
}

export function randomPassword(): string {
  return crypto.randomBytes(18).toString('hex');
}
