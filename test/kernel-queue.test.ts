/**
 * The kernel's share of a socket's backlog (src/http/kernel-queue.ts): the
 * parsing of Linux's TCP tables, the count of a real socket whose client
 * does not read, and the fallbacks where there is nothing to read.
 * test/stalled-opening.test.ts shows what the stall check makes of it.
 */
import assert from 'node:assert/strict'
import { once } from 'node:events'
import { mkdtemp, rm } from 'node:fs/promises'
import net from 'node:net'
import { tmpdir } from 'node:os'
import path from 'node:path'
import { describe, it, type TestContext } from 'node:test'
import { KERNEL_PROBE_BYTES, KernelQueues, PROC_TABLES, unackedByInode } from '../src/http/kernel-queue.ts'
import { until } from './helpers/server.ts'

const HEADER = '  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode\n'
const TCP6_HEADER = '  sl  local_address                         remote_address                        st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode\n'

/** A line as Linux prints it in /proc/net/tcp. */
function tcpLine(sl: number, txQueue: number, inode: number): string {
  return `${String(sl).padStart(4)}: 0100007F:8E61 0100007F:DEBA 01 ${txQueue.toString(16).toUpperCase().padStart(8, '0')}:00000000 04:00000007 00000000     0        0 ${inode} 2 00000000569b051b 20 0 0 15 -1`
}

/** A line as Linux prints it in /proc/net/tcp6 (an IPv4-mapped address). */
function tcp6Line(sl: number, txQueue: number, inode: number): string {
  return `${String(sl).padStart(4)}: 0000000000000000FFFF00000100007F:8E61 0000000000000000FFFF00000100007F:DEBA 01 ${txQueue.toString(16).toUpperCase().padStart(8, '0')}:00000000 04:00000007 00000000  1000        0 ${inode} 2 00000000569b051b 20 0 0 15 -1`
}

const wanted = (...inodes: number[]): Map<string, true> => new Map(inodes.map((inode) => [String(inode), true]))

/** A server socket with `bytes` written to it, and its client, paused: it does not read. */
async function unreadSocket(t: TestContext, bytes: number, listen: (server: net.Server) => void = (server) => server.listen(0, '127.0.0.1')): Promise<{ socket: net.Socket; client: net.Socket }> {
  const server = net.createServer()
  listen(server)
  await once(server, 'listening')
  const address = server.address() as net.AddressInfo | string
  const client = typeof address === 'string' ? net.connect(address) : net.connect(address.port, '127.0.0.1')
  client.pause()
  const [socket] = (await once(server, 'connection')) as [net.Socket]
  t.after(() => {
    client.destroy()
    socket.destroy()
    server.close()
  })
  socket.write(Buffer.alloc(bytes, 97))
  return { socket, client }
}

describe('unackedByInode', () => {
  const cases: [string, string, Map<string, true>, [string, number][]][] = [
    ['only the header', HEADER, wanted(610387), []],
    ['a wanted socket with bytes unacknowledged', `${HEADER}${tcpLine(0, 0x39b000, 610387)}\n`, wanted(610387), [['610387', 0x39b000]]],
    ['a wanted socket with nothing unacknowledged (not listed)', `${HEADER}${tcpLine(0, 0, 610387)}\n`, wanted(610387), []],
    ['a socket that is not wanted', `${HEADER}${tcpLine(0, 4096, 1)}\n`, wanted(610387), []],
    ['several lines, the last without a line break', `${HEADER}${tcpLine(0, 0, 5)}\n${tcpLine(1, 100, 6)}\n${tcpLine(2, 200, 7)}`, wanted(6, 7), [['6', 100], ['7', 200]]],
    ['a line number wider than its padding', `${HEADER}${tcpLine(123456, 300, 8)}\n`, wanted(8), [['8', 300]]],
    ['IPv6 lines', `${TCP6_HEADER}${tcp6Line(0, 0, 9)}\n${tcp6Line(1, 65536, 10)}\n`, wanted(9, 10), [['10', 65536]]],
    ['a wanted inode that is another field of a line (its uid)', `${TCP6_HEADER}${tcp6Line(0, 100, 42)}\n`, wanted(1000), []],
  ]
  for (const [name, table, inodes, expected] of cases) {
    it(name, () => {
      assert.deepEqual([...unackedByInode(table, inodes)], expected, `the unacknowledged bytes read from ${JSON.stringify(table)}`)
    })
  }
})

describe('KernelQueues', () => {
  it('counts what a client that does not read left with the kernel, and sees it taken once the client reads', {
    skip: process.platform === 'linux' ? false : 'Linux only',
    timeout: 30_000,
  }, async (t) => {
    const queues = new KernelQueues()
    const { socket, client } = await unreadSocket(t, 8 * 1024 * 1024)
    assert.equal(queues.unacked(socket), 0, 'not known before the kernel was asked')
    await until(() => queues.unacked(socket) > 0, 10_000, 'the kernel\'s count')
    const unacked = queues.unacked(socket)
    assert.ok(unacked >= KERNEL_PROBE_BYTES && unacked <= socket.bytesWritten, `${unacked} bytes unacknowledged, of ${socket.bytesWritten} written`)

    // The client reads everything: a later read of the tables (REFRESH_MS on) sees it taken.
    client.resume()
    await until(() => socket.writableLength === 0, 10_000, 'the process to hand everything on')
    await until(() => queues.unacked(socket) === 0, 10_000, 'the kernel to count everything taken')
    assert.equal(queues.enabled, true, 'still probing')
  })

  it('says 0 and stops probing when the kernel\'s tables cannot be read', async (t) => {
    const dir = await mkdtemp(path.join(tmpdir(), 'patchwire-kernel-'))
    t.after(() => rm(dir, { recursive: true, force: true }))
    const queues = new KernelQueues({ IPv4: path.join(dir, 'tcp'), IPv6: path.join(dir, 'tcp6') }, true)
    const { socket } = await unreadSocket(t, 8 * 1024 * 1024)
    assert.equal(queues.unacked(socket), 0, 'not known before the tables were read')
    await until(() => !queues.enabled, 10_000, 'the failed read to turn probing off')
    assert.equal(queues.unacked(socket), 0, 'nothing is counted once probing is off')
  })

  it('says 0 where it is off (another platform) and for a socket that is not TCP', async (t) => {
    const off = new KernelQueues(PROC_TABLES, false)
    assert.equal(off.enabled, false, 'off from the start')
    assert.equal(off.unacked((await unreadSocket(t, 8 * 1024 * 1024)).socket), 0, 'nothing is counted where it is off')
    if (process.platform === 'win32') return
    const dir = await mkdtemp(path.join(tmpdir(), 'patchwire-pipe-'))
    t.after(() => rm(dir, { recursive: true, force: true }))
    const { socket: pipe } = await unreadSocket(t, 8 * 1024 * 1024, (server) => server.listen(path.join(dir, 'socket')))
    assert.equal(new KernelQueues().unacked(pipe), 0, 'a pipe has no TCP count')
  })
})
