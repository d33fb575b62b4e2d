import { isAfter, later } from './positions.js'
import { SharedStream, type Member, type StreamEvent } from './shared-stream.js'
import type { EventSourceConstructor } from './event-source.js'

/**
 * A subscription as its tab's {@link Hub} keeps it: where it stands, so
 * that it skips what it already has and can be resumed by another leader.
 * @internal
 */
export interface Local {
  /** Given by the hub: unique across the tabs. */
  id: string
  readonly topic: string
  /** It has an `onSnapshot`. */
  readonly snapshot: boolean
  /** It has every frame of its topic up to this id. */
  pos: string | undefined
  /** It waits for a snapshot (none has come since it joined or since a reset). */
  snap: boolean
  /** It is in step with the shared stream, so it is also at the tab's position of that stream. */
  inMain: boolean
  /** Hands an event to the subscription's callbacks. */
  receive(event: StreamEvent): void
}

type Message =
  | { tab: string; join: Member[]; leave: string[] }
  | { hello: true }
  | { to: string[]; event: StreamEvent }

/**
 * The subscriptions of one tab to one path (and credentials), and the way to
 * the shared stream: the tab that holds the Web Lock named after the path is
 * the leader, owns the {@link SharedStream} for every tab, and posts its
 * events on a BroadcastChannel of the same name; the others tell it their
 * subscriptions there. Every tab also holds a lock of its own while it has
 * subscriptions, which the leader waits for to learn that a tab closed or
 * crashed. When the leader goes, the next tab in the lock's queue leads,
 * asks every tab for its subscriptions and where each stands, and the new
 * stream starts from the oldest of those positions: each subscription skips
 * what it has, so none loses or repeats a frame.
 *
 * Without Web Locks or BroadcastChannel (or with sharing off), the tab leads
 * alone.
 * @internal
 */
export class Hub {
  readonly #id = Math.random().toString(36).slice(2)
  #name = ''
  readonly #stream: () => SharedStream
  readonly #onClose: () => void
  readonly #locals = new Map<string, Local>()
  readonly #release: (() => void)[] = []
  readonly #watched = new Set<string>()
  readonly #joins = new Set<Local>()
  #leaves: string[] = []
  #count = 0
  #core: SharedStream | undefined
  #channel: BroadcastChannel | undefined
  #abort: AbortController | undefined
  // The last id of the shared stream this tab has seen.
  #position: string | undefined
  #started = false
  #flushing = false
  #closed = false

  /**
   * @param base - the path, with any query but no `#fragment`
   * @param share - try to share across tabs
   * @param onClose - called once the hub has no subscription left and closed
   */
  constructor(base: string, withCredentials: boolean, Source: EventSourceConstructor, share: boolean, onClose: () => void) {
    this.#onClose = onClose
    this.#stream = () => new SharedStream(base, withCredentials, Source, (to, event) => this.#relay(to, event))
    const locks = share && typeof navigator !== 'undefined' ? navigator.locks : undefined
    if (locks === undefined || typeof BroadcastChannel !== 'function') {
      this.#core = this.#stream()
      return
    }
    // Tabs name the stream by its absolute URL: a relative path means another one on another page.
    const name = (this.#name = `patchwire ${withCredentials} ${typeof location === 'undefined' ? base : new URL(base, location.href).href}`)
    this.#abort = new AbortController()
    const channel = (this.#channel = new BroadcastChannel(name))
    channel.onmessage = (message: MessageEvent<Message>) => this.#message(message.data)
    // The tab's own lock first: a leader that waited for it before we held
    // it would take this tab for gone.
    this.#hold(locks, `${name} ${this.#id}`, () => {
      this.#started = true
      this.#rejoin()
      this.#hold(locks, name, () => this.#lead())
    })
  }

  /** Adds a subscription and gives it its id. */
  add(local: Local): void {
    local.id = `${this.#id} ${++this.#count}`
    this.#locals.set(local.id, local)
    if (this.#core !== undefined) this.#core.join([this.#member(local)])
    else this.#queue(local)
  }

  /** Removes a subscription; the hub closes with its last one. */
  remove(local: Local): void {
    if (!this.#locals.delete(local.id)) return
    if (this.#core !== undefined) this.#core.leave([local.id])
    else {
      this.#joins.delete(local)
      this.#leaves.push(local.id)
      this.#queue()
    }
    if (this.#locals.size === 0) this.#close()
  }

  // What a leader needs to know of a subscription. Handed to a leader, it
  // is no longer in step with a stream until that leader's ready says so: a
  // new leader's frames of other subscriptions move the tab's position on.
  #member(local: Local): Member {
    if (local.inMain) local.pos = later(local.pos, this.#position)
    local.inMain = false
    return { id: local.id, topic: local.topic, need: local.snap || (local.pos ?? false), snapshot: local.snapshot }
  }

  // Subscriptions of one microtask go to the leader in one message, so that
  // it reopens the stream once for them.
  #queue(local?: Local): void {
    if (local !== undefined) this.#joins.add(local)
    if (this.#flushing || !this.#started) return
    this.#flushing = true
    queueMicrotask(() => this.#flush())
  }

  #flush(): void {
    this.#flushing = false
    if (this.#joins.size === 0 && this.#leaves.length === 0) return
    this.#post({ tab: this.#id, join: [...this.#joins].map((local) => this.#member(local)), leave: this.#leaves })
    this.#joins.clear()
    this.#leaves = []
  }

  #rejoin(): void {
    for (const local of this.#locals.values()) this.#joins.add(local)
    this.#flush()
  }

  #lead(): void {
    this.#joins.clear()
    this.#leaves = []
    this.#core = this.#stream()
    this.#core.join([...this.#locals.values()].map((local) => this.#member(local)))
    this.#post({ hello: true })
  }

  #hold(locks: LockManager, name: string, then: () => void): void {
    locks
      .request(name, { signal: (this.#abort as AbortController).signal }, () => {
        if (this.#closed) return undefined
        then()
        return new Promise<void>((resolve) => this.#release.push(resolve))
      })
      .catch(() => {})
  }

  #message(message: Message): void {
    const core = this.#core
    if ('to' in message) {
      if (core === undefined) this.#deliver(message.to, message.event)
    } else if ('hello' in message) {
      if (core === undefined && this.#started) this.#rejoin()
    } else if (core !== undefined) {
      const { tab } = message
      core.leave(message.leave)
      core.join(message.join)
      if (!this.#watched.has(tab)) {
        this.#watched.add(tab)
        this.#hold(navigator.locks, `${this.#name} ${tab}`, () => this.#core?.leave([], `${tab} `))
      }
    }
  }

  // The leader's events: to its own subscriptions, and to the other tabs
  // when some are due them or they carry the stream's position.
  #relay(to: string[], event: StreamEvent): void {
    this.#deliver(to, event)
    const own = `${this.#id} `
    // No other tab has joined yet: nobody listens.
    if (this.#watched.size > 0 && (to.some((id) => !id.startsWith(own)) || (event.main && idOf(event) !== ''))) this.#post({ to, event })
  }

  #deliver(to: string[], event: StreamEvent): void {
    const position = this.#position
    for (const id of to) {
      const local = this.#locals.get(id)
      if (local === undefined) continue
      if (!event.main) local.inMain = false
      if (event.type === 'patch') {
        if (!isAfter(event.id, local.inMain ? later(local.pos, position) : local.pos)) continue
        local.pos = event.id
      } else if (event.type === 'ready') {
        local.snap = false
        local.inMain ||= event.main
        local.pos = later(local.pos, event.id)
        continue
      } else if (event.type === 'snapshot') local.pos = undefined
      else if (event.type === 'reset') local.snap ||= local.snapshot
      else if ((event.type === 'state' && event.state === 'closed') || event.type === 'revoked') this.#locals.delete(id)
      local.receive(event)
    }
    if (event.main && idOf(event) !== '') this.#position = later(position, idOf(event))
    if (this.#locals.size === 0 && !this.#closed) this.#close()
  }

  #post(message: Message): void {
    if (!this.#closed || 'leave' in message) this.#channel?.postMessage(message)
  }

  #close(): void {
    this.#closed = true
    if (this.#started) this.#flush()
    this.#abort?.abort()
    for (const release of this.#release) release()
    this.#channel?.close()
    this.#core?.close()
    this.#onClose()
  }
}

function idOf(event: StreamEvent): string {
  return 'id' in event ? event.id : ''
}
