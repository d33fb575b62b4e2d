/**
 * The servers the tests start die with the test process, however it dies.
 * A test process that started a private redis-server is killed (SIGKILL,
 * SIGTERM, SIGINT, SIGKILL while its event loop is blocked) or exits
 * without stopping it: the redis-server must be gone within seconds, not
 * left running under init. A test runner killed alone (SIGKILL, SIGTERM)
 * takes its stuck test process, and so that one's servers, with it. The
 * same holds for a process the helper starts as another user, as a private
 * PostgreSQL server must be.
 */
import assert from 'node:assert/strict'
import { execFileSync, spawn } from 'node:child_process'
import { once } from 'node:events'
import { existsSync } from 'node:fs'
import { mkdtemp, readFile, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import path from 'node:path'
import { describe, it } from 'node:test'
import type { TestContext } from 'node:test'
import { fileURLToPath } from 'node:url'
import { spawnChild } from './helpers/children.ts'
import { childEnv, ROOT } from './helpers/package.ts'
import type { Child } from './helpers/children.ts'
import { NPM_TEST_FLAGS, startRunner } from './helpers/runner.ts'
import { until } from './helpers/server.ts'
import { hasEnded } from './helpers/tied-process.ts'

/** How long a tied process may outlive its parent: the kernel signals it at once; the rest is slack for a loaded machine. */
const GONE_MS = 5000

/** Starts the fixture; resolves with it and the pid of the server it started, checked to be that server. */
async function startParent(t: TestContext, args: string[], command: RegExp): Promise<{ parent: Child, pid: number }> {
  const parent = spawnChild(t, 'tied-server.ts', args)
  const { pid } = await parent.next('pid') as { pid: unknown }
  assert.equal(typeof pid, 'number', `the fixture reports the pid of its server, got ${String(pid)}`)
  // The pid is the server's once setpriv has exec'd it (at once; a loaded machine may take a moment).
  let commandLine = ''
  const isServer = async (): Promise<boolean> => {
    commandLine = (await readFile(`/proc/${String(pid)}/cmdline`, 'utf8')).split('\0').join(' ').trim()
    return command.test(commandLine)
  }
  await until(isServer, GONE_MS, `pid ${String(pid)} to be the server itself, not a wrapper`).catch((error: unknown) => {
    throw new Error(`pid ${String(pid)} runs "${commandLine}", not the server`, { cause: error })
  })
  return { parent, pid: pid as number }
}

/** Ends the fixture with `end`, waits for it to exit, then for the server to end. */
async function endAndCheck(parent: Child, pid: number, end: () => void, how: string): Promise<void> {
  const exited = once(parent.process, 'exit')
  end()
  await exited
  await until(() => hasEnded(pid), GONE_MS, `the server (pid ${pid}) to end after its test process did (${how})`)
}

describe('servers started by the test helpers', { timeout: 120_000 }, () => {
  for (const signal of ['SIGKILL', 'SIGTERM', 'SIGINT'] as const) {
    it(`a private redis-server ends when its test process is killed (${signal})`, { timeout: 30_000 }, async (t) => {
      const { parent, pid } = await startParent(t, ['redis'], /^redis-server /)
      await endAndCheck(parent, pid, () => parent.process.kill(signal), signal)
    })
  }

  it('a private redis-server ends when its test process exits without stopping it', { timeout: 30_000 }, async (t) => {
    const { parent, pid } = await startParent(t, ['redis'], /^redis-server /)
    await endAndCheck(parent, pid, () => parent.process.send({ exit: true }), 'process.exit')
  })

  it('a private redis-server ends when its test process is killed while its event loop is blocked', { timeout: 30_000 }, async (t) => {
    const { parent, pid } = await startParent(t, ['redis'], /^redis-server /)
    parent.process.send({ spin: true })
    await parent.next('spinning')
    await endAndCheck(parent, pid, () => parent.process.kill('SIGKILL'), 'SIGKILL while spinning')
  })

  for (const signal of ['SIGKILL', 'SIGTERM'] as const) {
    it(`a test runner killed with ${signal} takes its stuck test process with it, and that one's redis-server and fixture process`, { timeout: 60_000 }, async (t) => {
      const dir = await mkdtemp(path.join(tmpdir(), 'patchwire-tied-'))
      t.after(() => rm(dir, { recursive: true, force: true }))
      const pidsFile = path.join(dir, 'pids.json')
      const run = startRunner(t, NPM_TEST_FLAGS, [fileURLToPath(new URL('./fixtures/runner/stuck-with-redis.ts', import.meta.url))], { PATCHWIRE_PIDS_FILE: pidsFile })
      await until(() => existsSync(pidsFile), 30_000, 'the stuck test to start its redis-server')
      const pids = JSON.parse(await readFile(pidsFile, 'utf8')) as Record<'test' | 'redis' | 'child', number>
      for (const [name, pid] of Object.entries(pids)) assert.equal(await hasEnded(pid), false, `${name} (pid ${pid}) runs while the test does`)
      // The runner alone, as a CI timeout or `kill` does; not its process group.
      run.process.kill(signal)
      await run.ended(GONE_MS)
      for (const [name, pid] of Object.entries(pids)) await until(() => hasEnded(pid), GONE_MS, `${name} (pid ${pid}) to end after the runner did`)
    })
  }

  it('refuses to start a server without setpriv, naming what to install', { timeout: 30_000 }, async (t) => {
    // A PATH without setpriv (nor redis-server): the check comes first.
    const child = spawn(process.execPath, ['--import', 'tsx', fileURLToPath(new URL('./fixtures/tied-server.ts', import.meta.url)), 'redis'], {
      cwd: ROOT, env: { ...childEnv(), PATH: path.join(tmpdir(), 'patchwire-no-such-dir') }, stdio: ['ignore', 'ignore', 'pipe', 'ipc'],
    })
    t.after(() => { child.kill('SIGKILL') })
    let stderr = ''
    child.stderr?.on('data', (chunk: Buffer) => { stderr += chunk.toString() })
    const [code] = await once(child, 'exit') as [number | null]
    assert.notEqual(code, 0, 'the fixture fails')
    assert.match(stderr, /setpriv --pdeathsig KILL.*install util-linux/, 'the error names the tool and the package')
  })

  it('a process started as another user (as PostgreSQL must be) ends with its test process too', { timeout: 30_000 }, async (t) => {
    if (process.getuid?.() !== 0) return t.skip('switching users needs root')
    try {
      execFileSync('id', ['postgres'], { stdio: 'ignore' })
    } catch {
      return t.skip('no postgres user on this machine')
    }
    const { parent, pid } = await startParent(t, ['as-user', 'postgres'], /^sleep 600$/)
    const owner = (await readFile(`/proc/${pid}/status`, 'utf8')).match(/^Uid:\s+(\d+)/m)?.[1]
    assert.equal(owner, execFileSync('id', ['-u', 'postgres'], { encoding: 'utf8' }).trim(), 'it runs as the postgres user')
    await endAndCheck(parent, pid, () => parent.process.kill('SIGKILL'), 'SIGKILL')
  })
})
