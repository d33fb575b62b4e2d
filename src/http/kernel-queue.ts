import { readlinkSync } from 'node:fs'
import { readFile } from 'node:fs/promises'
import type { Socket } from 'node:net'
import { MIN_STALL_MS } from '../core/stream.js'

/**
 * The kernel's share of a socket's backlog, for the stall check: bytes a
 * socket handed to the kernel that the client has not acknowledged.
 *
 * Node only shows what waits in the process. The kernel takes writes into
 * its send buffer, which Linux sizes for the link when the connection opens:
 * about 100 KiB at an MTU of 1500, but up to 4 MiB (`tcp_wmem`'s maximum)
 * over loopback, whose segments are 64 KiB. So a client that never reads
 * can leave a whole replay there, nothing waits in the process, and the
 * stall check, blind to it, keeps the stream (and the kernel its megabytes)
 * for ever. Linux lists every TCP socket's unacknowledged bytes (`tx_queue`)
 * in /proc/self/net/tcp and tcp6, by inode.
 *
 * Reading those tables costs the kernel a walk of every socket of the host
 * (measured on a shared 2-core machine: 40 ms with none, 230 to 620 ms
 * with 53 000), so it is done off the event loop, at most once per
 * {@link REFRESH_MS}, and only for sockets that may hold
 * {@link KERNEL_PROBE_BYTES} or more there (the core asks only about
 * streams that got no frame in the last heartbeat interval). Below that, a
 * stalled reader holds less there than one piece of an opening.
 *
 * This relies on Node's internals (a TCP handle's `fd`, `bytesWritten` and
 * `writeQueueSize`) and on Linux's /proc: where either is missing (another
 * platform, TLS, a pipe, Bun or Deno, a /proc that cannot be read) it says
 * 0, and the stall check sees only what waits in the process, as before.
 * @internal
 */
export class KernelQueues {
  readonly #tables: Readonly<Record<Family, string>>
  #enabled: boolean
  /** Only sockets that were probed (or tried to be). */
  readonly #probed = new WeakMap<Socket, Probed>()
  /** Sockets to probe at the next refresh. */
  #wanted = new Set<Socket>()
  #scheduled = false
  #lastRefresh = -Infinity
  readonly #refreshTask = (): void => {
    void this.#refresh()
  }

  /**
   * @param tables - where the kernel lists its TCP sockets, by address family
   * @param enabled - false where there is no such list
   */
  constructor(tables: Readonly<Record<Family, string>> = PROC_TABLES, enabled = process.platform === 'linux') {
    this.#tables = tables
    this.#enabled = enabled
  }

  /** Whether probing still works: false once a table could not be read. */
  get enabled(): boolean {
    return this.#enabled
  }

  /**
   * Bytes `socket` handed to the kernel that its client has not
   * acknowledged, as of the last refresh plus whatever was handed on since:
   * when that is {@link KERNEL_PROBE_BYTES} or more; 0 when it is less, or
   * not known yet, or cannot be known. Asks for a refresh when it may be
   * that much, so that a stream is judged on a count at most
   * {@link REFRESH_MS} old.
   */
  unacked(socket: Socket): number {
    if (!this.#enabled) return 0
    const handle = tcpHandle(socket)
    if (handle === undefined) return 0
    const handedOn = handed(handle)
    // Most streams never carry that much: they cost two reads of the handle.
    if (handedOn < KERNEL_PROBE_BYTES) return 0
    const probed = this.#probed.get(socket)
    const unacked = handedOn - (probed?.acked ?? 0)
    if (unacked < KERNEL_PROBE_BYTES || probed?.inode === '') return 0
    this.#want(socket)
    return probed?.refreshed === true ? unacked : 0
  }

  #want(socket: Socket): void {
    this.#wanted.add(socket)
    if (this.#scheduled) return
    this.#scheduled = true
    // A timer, never less than a turn away: the current heartbeat's writes
    // are then counted as handed. Unref'd: it must not keep a process alive.
    setTimeout(this.#refreshTask, Math.max(0, this.#lastRefresh + REFRESH_MS - Date.now())).unref()
  }

  /** Reads the kernel's tables once for every wanted socket. */
  async #refresh(): Promise<void> {
    this.#lastRefresh = Date.now()
    const sockets = this.#wanted
    this.#wanted = new Set()
    try {
      for (const family of FAMILIES) await this.#read(family, sockets)
    } catch {
      // No /proc (a container that hides it, say): the stall check sees the process only.
      this.#enabled = false
    } finally {
      this.#scheduled = false
    }
  }

  /**
   * Reads one table. The kernel counts each socket at some moment of the
   * read, while the process may hand it more (a heartbeat): what a socket
   * handed on is taken before and after, and a count is progress only when
   * it is sure to be, above the highest the previous count could have been.
   */
  async #read(family: Family, sockets: ReadonlySet<Socket>): Promise<void> {
    const wanted = new Map<string, { socket: Socket; probed: Probed; before: number }>()
    for (const socket of sockets) {
      const handle = tcpHandle(socket)
      if (handle === undefined || socket.destroyed || (socket.remoteFamily === 'IPv6') !== (family === 'IPv6')) continue
      let probed = this.#probed.get(socket)
      if (probed === undefined) {
        probed = { inode: inodeOf(handle.fd), acked: 0, ackedAtMost: 0, refreshed: false }
        this.#probed.set(socket, probed)
      }
      if (probed.inode !== '') wanted.set(probed.inode, { socket, probed, before: handed(handle) })
    }
    if (wanted.size === 0) return
    const queues = unackedByInode(await readFile(this.#tables[family], 'latin1'), wanted)
    for (const [inode, { socket, probed, before }] of wanted) {
      const handle = tcpHandle(socket)
      if (handle === undefined) continue
      // Missing from the table: the socket closed, or it has nothing unacknowledged.
      const queued = queues.get(inode) ?? 0
      const atLeast = before - queued
      if (!probed.refreshed || atLeast > probed.ackedAtMost) probed.acked = Math.max(probed.acked, atLeast)
      probed.ackedAtMost = handed(handle) - queued
      probed.refreshed = true
    }
  }
}

/** The kernel's TCP socket lists, as Linux names them. @internal */
export const PROC_TABLES: Readonly<Record<Family, string>> = { IPv4: '/proc/self/net/tcp', IPv6: '/proc/self/net/tcp6' }

/**
 * Bytes a stream may leave with the kernel before it is probed, and counted:
 * one piece of an opening. @internal
 */
export const KERNEL_PROBE_BYTES = 64 * 1024

/**
 * The shortest time between two reads of the kernel's tables: a quarter of
 * the shortest stall, so that a reader that progresses is seen to in every
 * stall window, even when a read is slow. @internal
 */
export const REFRESH_MS = MIN_STALL_MS / 4

/**
 * Picks the unacknowledged bytes (`tx_queue`) of the wanted inodes out of a
 * /proc/net/tcp or tcp6 table, whose lines read
 * `sl: local remote st tx_queue:rx_queue tr:when retrnsmt uid timeout inode …`
 * (hex except for the last four). Most sockets have nothing unacknowledged,
 * so a line is parsed further only when its `tx_queue` is not zero.
 * @internal
 */
export function unackedByInode(table: string, wanted: ReadonlyMap<string, unknown>): Map<string, number> {
  const found = new Map<string, number>()
  // The first line is the header.
  let at = table.indexOf('\n') + 1
  while (at > 0 && at < table.length) {
    const end = table.indexOf('\n', at)
    const lineEnd = end === -1 ? table.length : end
    const local = table.indexOf(' ', table.indexOf(': ', at) + 2)
    const remote = table.indexOf(' ', local + 1)
    // `st` is two hex digits.
    const queues = remote + 4
    if (remote !== -1 && queues < lineEnd && !table.startsWith('00000000', queues)) {
      const fields = table.slice(queues, lineEnd).split(/ +/)
      const inode = fields[5]
      if (inode !== undefined && wanted.has(inode)) found.set(inode, Number.parseInt(fields[0] as string, 16))
    }
    at = lineEnd + 1
  }
  return found
}

/** Address families of the kernel's socket lists. @internal */
export type Family = 'IPv4' | 'IPv6'

const FAMILIES: readonly Family[] = ['IPv4', 'IPv6']

interface Probed {
  /** The socket's inode, as the tables name it; '' when it could not be read. */
  readonly inode: string
  /** Bytes the client surely acknowledged, as far as the refreshes showed: it only grows. */
  acked: number
  /** The most the client can have acknowledged at the last refresh. */
  ackedAtMost: number
  /** Whether a refresh has counted it yet. */
  refreshed: boolean
}

/** What a TCP socket's handle (Node's `TCPWrap`) shows of its writes. */
interface TcpHandle {
  readonly fd: number
  /** Bytes given to libuv, including those it still queues. */
  readonly bytesWritten: number
  /** Bytes libuv has not handed to the kernel yet. */
  readonly writeQueueSize: number
}

/**
 * The handle of a plain TCP socket. A TLS socket's handle counts clear text
 * while the kernel counts records, and a pipe has no such list: neither is probed.
 */
function tcpHandle(socket: Socket): TcpHandle | undefined {
  const handle = (socket as Socket & { _handle?: Partial<TcpHandle> & { reset?: unknown } | null })._handle
  if (handle == null || typeof handle.reset !== 'function' || typeof handle.bytesWritten !== 'number' || (socket as Socket & { encrypted?: boolean }).encrypted === true) return undefined
  return handle as TcpHandle
}

/** Bytes of a socket that libuv handed to the kernel. */
function handed(handle: TcpHandle): number {
  return handle.bytesWritten - handle.writeQueueSize
}

/** A socket's inode, from its file descriptor's link (`socket:[123]`); '' when it cannot be read. */
function inodeOf(fd: number): string {
  try {
    return /^socket:\[(\d+)\]$/.exec(readlinkSync(`/proc/self/fd/${fd}`))?.[1] ?? ''
  } catch {
    return ''
  }
}
