import { later } from './positions.js'
import { pageHref } from './refusal.js'
import { SharedStream, type Member, type StreamEvent } from './shared-stream.js'
import type { EventSourceConstructor } from './event-source.js'

/**
 * A subscription as its tab's {@link Hub} sees it; where it stands is the
 * subscription's own business (see `subscribe`).
 * @internal
 */
export interface Local {
  /** Given by the hub: unique across the tabs. */
  id: string
  /**
   * What a leader needs to know of it. Handed to a leader, it is no longer
   * in step with a stream until that leader's ready says so.
   * @param position - the tab's position of the shared stream
   */
  member(position: string | undefined): Member
  /**
   * Takes an event of the shared stream: skips what it has, then hands the
   * rest to the subscription's callbacks.
   * @param position - the tab's position of the shared stream before the event
   */
  receive(event: StreamEvent, position: string | undefined): void
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
      this.#lead()
      return
    }
    // Tabs name the stream by its absolute URL: a relative path means another one on another page.
    const href = pageHref()
    const name = (this.#name = `patchwire ${withCredentials} ${href === undefined ? base : new URL(base, href).href}`)
    this.#abort = new AbortController()
    const channel = (this.#channel = new BroadcastChannel(name))
    channel.onmessage = (message: MessageEvent<Message>) => this.#message(message.data)
    // The tab's own lock first: a leader that waited for it before we held
    // it would take this tab for gone.
    this.#hold(`${name} ${this.#id}`, () => {
      this.#rejoin()
      this.#hold(name, () => this.#lead())
    })
  }

  /** Adds a subscription and gives it its id. */
  add(local: Local): void {
    local.id = `${this.#id} ${++this.#count}`
    this.#locals.set(local.id, local)
    this.#queue(local)
  }

  /** Removes a subscription; the hub closes with its last one. */
  remove(local: Local): void {
    if (!this.#locals.delete(local.id)) return
    this.#joins.delete(local)
    this.#leaves.push(local.id)
    this.#queue()
    if (this.#locals.size === 0) this.#close()
  }

  // Subscriptions of one microtask go to the leader at once, so that it
  // reopens the stream once for them, even from another tab.
  #queue(local?: Local): void {
    if (local !== undefined) this.#joins.add(local)
    if (this.#flushing || !this.#started) return
    this.#flushing = true
    queueMicrotask(() => this.#flush())
  }

  #flush(): void {
    this.#flushing = false
    const leave = this.#leaves
    const join = [...this.#joins].map((local) => local.member(this.#position))
    this.#joins.clear()
    this.#leaves = []
    if (join.length + leave.length === 0) return
    if (this.#core === undefined) return this.#post({ tab: this.#id, join, leave })
    this.#core.leave(leave)
    this.#core.join(join)
  }

  // Tells the leader (this tab's own stream, or another tab's) every subscription.
  #rejoin(): void {
    this.#started = true
    for (const local of this.#locals.values()) this.#joins.add(local)
    this.#flush()
  }

  #lead(): void {
    this.#core = this.#stream()
    this.#rejoin()
    this.#post({ hello: true })
  }

  // Only a hub that shares holds locks: navigator.locks is there.
  #hold(name: string, then: () => void): void {
    navigator.locks
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
        this.#hold(`${this.#name} ${tab}`, () => this.#core?.leave([], `${tab} `))
      }
    }
  }

  // The leader's events: to its own subscriptions, and to the other tabs
  // once one has joined (before, nobody listens). Every tab follows the
  // stream's position from the events that carry an id.
  #relay(to: string[], event: StreamEvent): void {
    this.#deliver(to, event)
    if (this.#watched.size > 0) this.#post({ to, event })
  }

  #deliver(to: string[], event: StreamEvent): void {
    const position = this.#position
    for (const id of to) {
      const local = this.#locals.get(id)
      if (local === undefined) continue
      if ((event.type === 'state' && event.state === 'closed') || event.type === 'revoked') this.#locals.delete(id)
      local.receive(event, position)
    }
    const { id } = event as { id?: string }
    if (event.main && id) this.#position = later(position, id)
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
