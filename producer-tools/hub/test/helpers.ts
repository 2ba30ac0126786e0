/* helpers.ts - the real processes the integration tests run: thopter-devbroker,
 * the fake fly Machines API (tests/fakes/fake_fly.py) and thopter-consumer,
 * with the settings tests/harness/thopter_harness.py gives them.
 *
 * Every process is started here and stopped by its own handle (stdin closed,
 * then SIGTERM, then SIGKILL), never by name.
 */

import { ChildProcess, spawn, spawnSync } from 'child_process';
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import * as readline from 'readline';
import { kafkaSettings } from '../src/config';
import { makeProducer, KafkaProducer } from '../src/kafka-client';

export const SOURCE_DIR = process.env.THOPTER_SOURCE_DIR ?? path.resolve(__dirname, '..', '..', '..', '..');
export const BUILD_DIR = process.env.THOPTER_BUILD_DIR ?? path.join(SOURCE_DIR, 'build', 'dev');
export const MULTIPLIER = Number(process.env.THOPTER_TIMEOUT_MULTIPLIER ?? '1') || 1;
export const TOKEN = 'fm2_test-secret-token-ABCDEF0123456789';
/**
 * Which Kafka the integration tests run against: THOPTER_TEST_KAFKA=real is a
 * real Apache Kafka (tests/harness/kafka_cluster.py, one node, with a SASL
 * listener); anything else is thopter-devbroker (librdkafka's mock cluster).
 */
export const REAL_KAFKA = process.env.THOPTER_TEST_KAFKA === 'real';
/* Group settings (tests/harness/thopter_harness.py): the mock rejoins a group
 * only after session.timeout.ms - 1 s, and never with a session shorter than
 * its 3 s initial join delay, so it gets 4 s; a real broker refuses less than
 * its group.min.session.timeout.ms (6000). */
export const GROUP = { sessionTimeoutMs: REAL_KAFKA ? 6000 : 4000, heartbeatIntervalMs: 500 };
/* What tests/CMakeLists.txt fails a test on, here applied to the children's own output (ASan builds). */
export const SANITIZER_RE = /ERROR: (Address|Leak)Sanitizer|runtime error:|SUMMARY: \w+Sanitizer/;

/** The programs of the C build the integration tests run (scripts/check-c-build.js checks the same list). */
export const C_BINARIES = ['thopter-devbroker', 'thopter-consumer', 'thopter-send', 'tests/request_verdict'];

/** @p name of the C build; @throws one line naming the missing file and how to build it. */
export function binary(name: string): string {
  const file = path.join(BUILD_DIR, name);
  if (!fs.existsSync(file))
    throw new Error(
      `${file} is missing: build the C side first (cd ${SOURCE_DIR} && bash deploy/setup.sh && cmake --preset dev && ` +
        'cmake --build --preset dev -j2), or point THOPTER_BUILD_DIR at a build',
    );
  return file;
}

export function tmo(ms: number): number {
  return ms * MULTIPLIER;
}

export const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

type Falsy = undefined | null | false | '' | 0;

/** Polls @fn until it returns a true value, which it returns. */
export async function waitFor<T>(what: string, fn: () => T | Falsy | Promise<T | Falsy>, timeoutMs = 20000, everyMs = 50): Promise<T> {
  const deadline = Date.now() + tmo(timeoutMs);
  for (;;) {
    const v = await fn();
    if (v) return v as T;
    if (Date.now() > deadline) throw new Error(`timed out after ${tmo(timeoutMs)} ms waiting for ${what}`);
    await sleep(everyMs);
  }
}

/* The first line of a child's stdout. */
function firstLine(child: ChildProcess, what: string, timeoutMs = 10000): Promise<string> {
  return new Promise((resolve, reject) => {
    if (!child.stdout) return reject(new Error(`${what}: no stdout`));
    const rl = readline.createInterface({ input: child.stdout });
    const timer = setTimeout(() => reject(new Error(`${what} did not start in ${timeoutMs} ms`)), tmo(timeoutMs));
    rl.once('line', (line) => {
      clearTimeout(timer);
      rl.close();
      resolve(line.trim());
    });
    child.once('exit', (code) => reject(new Error(`${what} exited (${code}) before it printed its first line`)));
  });
}

/* The first @n lines of a child's stdout. */
function firstLines(child: ChildProcess, what: string, n: number, timeoutMs: number, stderr: () => string): Promise<string[]> {
  return new Promise((resolve, reject) => {
    if (!child.stdout) return reject(new Error(`${what}: no stdout`));
    const rl = readline.createInterface({ input: child.stdout });
    const lines: string[] = [];
    const timer = setTimeout(() => reject(new Error(`${what} did not start in ${tmo(timeoutMs)} ms: ${stderr().slice(-2000)}`)), tmo(timeoutMs));
    rl.on('line', (line) => {
      lines.push(line.trim());
      if (lines.length === n) {
        clearTimeout(timer);
        rl.close();
        resolve(lines);
      }
    });
    child.once('exit', (code) => reject(new Error(`${what} exited (${code}) before it printed ${n} lines: ${stderr().slice(-2000)}`)));
  });
}

async function stopChild(child: ChildProcess, timeoutMs = 10000): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  const exited = new Promise<void>((r) => child.once('exit', () => r()));
  child.stdin?.end();
  const t1 = setTimeout(() => child.kill('SIGTERM'), 3000);
  const t2 = setTimeout(() => child.kill('SIGKILL'), tmo(timeoutMs));
  await exited;
  clearTimeout(t1);
  clearTimeout(t2);
}

/** The SASL user kafka_cluster.py --sasl creates (PLAIN and SCRAM-SHA-256/512). */
export const SASL_USER = { username: 'thopter-hub-test', password: 'hub-test-secret-0123456789' };

export class Devbroker {
  readonly child: ChildProcess;
  readonly kind: 'mock' | 'real';
  /* A real Kafka run by test/fixtures/kafka_faults.py: it can go down and up. */
  private faults = false;
  bootstrap = '';
  /** The SASL_PLAINTEXT listener (real Kafka only). */
  saslBootstrap = '';
  stderr = '';

  private constructor(child: ChildProcess, kind: 'mock' | 'real') {
    this.child = child;
    this.kind = kind;
    child.stderr?.on('data', (d: Buffer) => {
      this.stderr += d.toString();
    });
  }

  /**
   * thopter-devbroker, or with THOPTER_TEST_KAFKA=real a one-node Kafka with a
   * SASL listener; with @faults a one-node Kafka whose broker inject() takes
   * down and up (test/fixtures/kafka_faults.py, no SASL listener).
   */
  static async start(options: { faults?: boolean } = {}): Promise<Devbroker> {
    const python = fs.existsSync('/usr/bin/python3') ? '/usr/bin/python3' : 'python3';
    if (REAL_KAFKA && options.faults) {
      const b = new Devbroker(
        spawn(python, [path.join(__dirname, '..', '..', 'test', 'fixtures', 'kafka_faults.py')], {
          stdio: ['pipe', 'pipe', 'pipe'],
          env: { ...process.env, THOPTER_SOURCE_DIR: SOURCE_DIR },
        }),
        'real',
      );
      b.faults = true;
      const [line] = await firstLines(b.child, 'kafka_faults.py', 1, 120000, () => b.stderr);
      if (!line?.startsWith('bootstrap.servers=')) throw new Error(`kafka_faults.py: unexpected first line ${line}`);
      b.bootstrap = line.slice('bootstrap.servers='.length);
      return b;
    }
    if (REAL_KAFKA) {
      const script = path.join(SOURCE_DIR, 'tests', 'harness', 'kafka_cluster.py');
      if (!fs.existsSync(script)) throw new Error(`${script} is missing: THOPTER_TEST_KAFKA=real needs the real-Kafka harness`);
      const b = new Devbroker(
        spawn(python, [script, '--nodes', '1', '--sasl', `${SASL_USER.username}:${SASL_USER.password}`], { stdio: ['pipe', 'pipe', 'pipe'] }),
        'real',
      );
      const lines = await firstLines(b.child, 'kafka_cluster.py', 2, 120000, () => b.stderr);
      const [plain, sasl] = lines;
      if (!plain?.startsWith('bootstrap.servers=')) throw new Error(`kafka_cluster.py: unexpected first line ${plain}`);
      if (!sasl?.startsWith('sasl.bootstrap.servers=')) throw new Error(`kafka_cluster.py: unexpected second line ${sasl}`);
      b.bootstrap = plain.slice('bootstrap.servers='.length);
      b.saslBootstrap = sasl.slice('sasl.bootstrap.servers='.length);
      return b;
    }
    const b = new Devbroker(spawn(binary('thopter-devbroker'), [], { stdio: ['pipe', 'pipe', 'pipe'] }), 'mock');
    const line = await firstLine(b.child, 'thopter-devbroker');
    if (!line.startsWith('bootstrap.servers=')) throw new Error(`thopter-devbroker: unexpected first line ${line}`);
    b.bootstrap = line.slice('bootstrap.servers='.length);
    return b;
  }

  /** Fault injection (thopter-devbroker --help): "down", "up", ...; on a real Kafka started with faults, "down" and "up". */
  async inject(command: string): Promise<void> {
    if (this.kind !== 'mock' && !this.faults) throw new Error(`fault injection ("${command}") needs thopter-devbroker or Devbroker.start({ faults: true })`);
    const before = this.stderr.length;
    this.child.stdin?.write(`${command}\n`);
    const ack = this.faults ? /kafka_faults: (ok|error)/ : /thopter-devbroker: (ok|error|brokers? (down|up))/;
    await waitFor(`the broker to acknowledge "${command}"`, () => ack.test(this.stderr.slice(before)), this.faults ? 120000 : 5000);
    if (/(thopter-devbroker|kafka_faults): error/.test(this.stderr.slice(before))) throw new Error(`"${command}": ${this.stderr.slice(before).trim()}`);
  }

  async stop(): Promise<void> {
    await stopChild(this.child, this.kind === 'real' ? 60000 : 10000);
    if (SANITIZER_RE.test(this.stderr)) throw new Error(`sanitizer report from thopter-devbroker:\n${this.stderr}`);
  }
}

export class FakeFly {
  readonly child: ChildProcess;
  base = '';

  private constructor(child: ChildProcess) {
    this.child = child;
  }

  static async start(config: Record<string, unknown> = {}): Promise<FakeFly> {
    const python = fs.existsSync('/usr/bin/python3') ? '/usr/bin/python3' : 'python3';
    const args = [path.join(SOURCE_DIR, 'tests', 'fakes', 'fake_fly.py'), '--port', '0', '--app', 'thopters', '--stdin-eof'];
    if (Object.keys(config).length) args.push('--config', JSON.stringify(config));
    const f = new FakeFly(
      spawn(python, args, { stdio: ['pipe', 'pipe', 'inherit'], env: { ...process.env, FAKE_FLY_TOKEN: TOKEN } }),
    );
    const line = await firstLine(f.child, 'fake_fly.py');
    if (!line.startsWith('PORT=')) throw new Error(`fake_fly.py: unexpected first line ${line}`);
    f.base = `http://127.0.0.1:${line.slice(5)}`;
    return f;
  }

  async control<T = unknown>(method: string, p: string, body?: unknown): Promise<T> {
    const res = await fetch(this.base + p, {
      method,
      headers: body === undefined ? {} : { 'Content-Type': 'application/json' },
      body: body === undefined ? undefined : JSON.stringify(body),
    });
    const text = await res.text();
    if (!res.ok) throw new Error(`fake fly ${method} ${p}: HTTP ${res.status} ${text}`);
    return (text ? JSON.parse(text) : null) as T;
  }

  seedMachine(m: { id: string; name: string; state?: string }): Promise<unknown> {
    return this.control('POST', '/_fake/machines', m);
  }

  calls(route?: string): Promise<Array<{ method: string; path: string; route: string; machine: string | null; status: number | null }>> {
    return this.control('GET', `/_fake/calls${route ? `?route=${encodeURIComponent(route)}` : ''}`);
  }

  machine(id: string): Promise<{ state: string; gone?: boolean }> {
    return this.control('GET', `/_fake/machines/${id}`);
  }

  stop(): Promise<void> {
    return stopChild(this.child);
  }
}

export class ThopterConsumer {
  readonly child: ChildProcess;
  readonly logFile: string;

  constructor(bootstrap: string, flyBase: string, role = 'destroy', env: Record<string, string> = {}) {
    this.logFile = path.join(fs.mkdtempSync(path.join(os.tmpdir(), 'thopter-hub-test-')), 'consumer.log');
    const base: NodeJS.ProcessEnv = {};
    for (const [k, v] of Object.entries(process.env))
      if (!k.startsWith('THOPTER_') && !k.startsWith('KAFKA_') && !k.startsWith('FLY_')) base[k] = v;
    const fd = fs.openSync(this.logFile, 'w');
    this.child = spawn(
      binary('thopter-consumer'),
      ['--role', role, '-X', `session.timeout.ms=${GROUP.sessionTimeoutMs}`, '-X', 'heartbeat.interval.ms=500'],
      {
        stdio: ['ignore', 'ignore', fd],
        env: {
          ...base,
          KAFKA_BROKERS: bootstrap,
          APP_NAME: 'thopters',
          FLY_DEPLOY_KEY: TOKEN,
          FLY_API_BASE: flyBase,
          THOPTER_METRICS_ADDR: '127.0.0.1:0',
          THOPTER_RETRY_BASE_MS: '50',
          THOPTER_RETRY_MAX_MS: '400',
          THOPTER_BREAKER_PROBE_MS: '300',
          THOPTER_FLY_TIMEOUT: '5',
          THOPTER_DRAIN_TIMEOUT: '20',
          ...env,
        },
      },
    );
    fs.closeSync(fd);
  }

  log(): string {
    return fs.readFileSync(this.logFile, 'utf8');
  }

  waitAssigned(timeoutMs = 30000): Promise<unknown> {
    return waitFor(`thopter-consumer to be assigned partitions (log ${this.logFile})`, () => /"msg":"assigned (?!nothing)/.test(this.log()), timeoutMs);
  }

  async stop(): Promise<number | null> {
    let code = this.child.exitCode;
    if (code === null && this.child.signalCode === null) {
      const exited = new Promise<number | null>((r) => this.child.once('exit', (c) => r(c)));
      this.child.kill('SIGTERM');
      const t = setTimeout(() => this.child.kill('SIGKILL'), tmo(40000));
      code = await exited;
      clearTimeout(t);
    }
    const log = this.log();
    if (SANITIZER_RE.test(log)) throw new Error(`sanitizer report from thopter-consumer (${this.logFile}):\n${log.slice(-6000)}`);
    return code;
  }
}

/** {partition: number of records} of @topic (kcat reads them all; nothing here is compacted or deleted). */
export function endOffsets(bootstrap: string, topic: string): Record<number, number> {
  const out: Record<number, number> = {};
  for (const r of readTopic(bootstrap, topic)) out[r.partition] = (out[r.partition] ?? 0) + 1;
  return out;
}

/** A plain producer (the package's settings: idempotent, acks=all, murmur2_random), connected. */
export async function rawProducer(bootstrap: string, clientId = 'hub-test-producer'): Promise<KafkaProducer> {
  const p = makeProducer(kafkaSettings({ brokers: [bootstrap], clientId}), undefined);
  await p.connect();
  return p;
}

export function total(offsets: Record<number, number>): number {
  return Object.values(offsets).reduce((a, b) => a + b, 0);
}

/** Every record of @topic with kcat (-e: to the current end): key, partition, headers, value. */
export function readTopic(bootstrap: string, topic: string): Array<{ partition: number; key: string; headers: string[]; value: string }> {
  const r = spawnSync('kcat', ['-b', bootstrap, '-C', '-t', topic, '-o', 'beginning', '-e', '-q', '-J'], { encoding: 'utf8', timeout: tmo(20000) });
  if (r.status !== 0) throw new Error(`kcat -C ${topic}: ${r.stderr}`);
  return r.stdout
    .split('\n')
    .filter((l) => l.trim())
    .map((l) => JSON.parse(l) as { partition: number; key: string; headers?: string[]; payload: string })
    .map((m) => ({ partition: m.partition, key: m.key, headers: m.headers ?? [], value: m.payload }));
}

/** A valid machine id from a number. */
export function machineId(n: number): string {
  return n.toString(16).padStart(14, '0');
}

/** A GitHubContext like the hub's poller builds. */
export function github(issue = 42) {
  return {
    repository: 'telepath-computer/thopter-swarm',
    issueNumber: String(issue),
    issueTitle: 'Fix the flaky test',
    issueBody: 'The test fails one time in ten.',
    issueUrl: `https://github.com/telepath-computer/thopter-swarm/issues/${issue}`,
    issueAuthor: 'octocat',
    mentionAuthor: 'octocat',
    mentionLocation: 'body' as const,
    comments: [],
  };
}

/** A HubLogger that keeps its lines (for assertions). */
export function memoryLogger() {
  const lines: string[] = [];
  return {
    lines,
    info: (m: string) => void lines.push(`info ${m}`),
    warn: (m: string) => void lines.push(`warn ${m}`),
    error: (m: string) => void lines.push(`error ${m}`),
  };
}
