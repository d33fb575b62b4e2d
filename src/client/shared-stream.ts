import type { PatchwireErrorCode } from '../errors.js'
import type { PatchOp } from '../patch-op.js'
import { parseControl, parseOps, splitFrame } from './frames.js'
import { compareIds, later } from './positions.js'
import { explainRefusal } from './refusal.js'
import type { EventSourceConstructor, EventSourceLike, SubscriptionState } from './event-source.js'

/**
 * What a {@link SharedStream} tells a member. Plain data, so that a leader
 * tab can post it to the other tabs as is. `main`: it came from the shared
 * stream, not from a member's catch-up stream.
 * @internal
 */
export type StreamEvent =
  | { type: 'patch'; main: boolean; topic: string; ops: PatchOp[]; id: string }
  | { type: 'snapshot'; main: boolean; topic: string; data: string }
  | { type: 'reset'; main: boolean; reason: string; id: string }
  | { type: 'ready'; main: boolean; id: string }
  | { type: 'revoked'; main: boolean; topic: string }
  | { type: 'state'; main: boolean; state: SubscriptionState; code?: PatchwireErrorCode | undefined; message?: string | undefined }
  | { type: 'error'; main: boolean; code: PatchwireErrorCode; message: string }

/**
 * A subscription as the shared stream sees it. `need` is where it must
 * start: an event id (it has everything up to there), `true` (it wants the
 * topic's snapshot, so a stream that starts fresh), `false` (from the
 * stream's position, whatever it is).
 * @internal
 */
export interface Member {
  readonly id: string
  readonly topic: string
  readonly need: string | boolean
  /** It has an `onSnapshot`: after a reset it needs the snapshot that follows. */
  readonly snapshot: boolean
}

interface Entry {
  readonly id: string
  readonly topic: string
  readonly snapshot: boolean
  // `undefined`: in step with the main stream, at its position.
  need: string | boolean | undefined
  leg?: Leg | undefined
  // Coming back from a catch-up: it may pull the main stream back a little.
  merge: boolean
  // Its topic may be the one a stream was refused for: it is tried alone.
  split?: boolean
}

// One EventSource: the main stream, or a catch-up stream that brings some
// members to a position from which they can join the main one.
interface Leg {
  readonly source: EventSourceLike
  readonly url: string
  readonly topics: readonly string[]
  readonly members: Set<Entry>
  readonly main: boolean
  state: SubscriptionState
  ready?: boolean
  closed?: boolean
  // The server revoked a topic of it: it ends, and is reopened without that topic.
  revoked?: boolean
}

/**
 * One `EventSource` per path (and credentials) carrying the topics of every
 * member, wherever the members live (this tab or others). It reopens once
 * per batch of joins and leaves, from the last id it saw, so no topic loses
 * or repeats a frame; the readers drop frames at or before their own
 * position (see `Hub`).
 *
 * A member that the main stream cannot serve from where it stands gets a
 * catch-up stream of its own first: one that wants a snapshot while the
 * main stream is positioned (only a fresh stream gets snapshots), or one
 * whose `lastEventId` is older than the main stream's position or of
 * another epoch (going back would replay every topic, or reset them all if
 * the id is too old). At the catch-up's `ready` the member has everything
 * up to its id, and joins the main stream from there. A refused stream of
 * several topics is split the same way, so that one forbidden topic does not
 * take the others down.
 * @internal
 */
export class SharedStream {
  readonly #base: string
  readonly #withCredentials: boolean
  readonly #Source: EventSourceConstructor
  readonly #send: (to: string[], event: StreamEvent) => void
  readonly #entries = new Map<string, Entry>()
  // Topics a server accepted: a refusal is not theirs.
  readonly #confirmed = new Set<string>()
  #main: Leg | undefined
  // The main stream's position: the last id it saw, or the id it was opened from.
  #last: string | undefined
  #scheduled = false

  /**
   * @param base - the path, with any query but no `#fragment`
   * @param withCredentials - passed to the `EventSource`
   * @param Source - the `EventSource` constructor
   * @param send - delivers an event to members by id; called for every main
   * event that carries an id even when no member is due it, so that readers
   * can follow the stream's position
   */
  constructor(base: string, withCredentials: boolean, Source: EventSourceConstructor, send: (to: string[], event: StreamEvent) => void) {
    this.#base = base
    this.#withCredentials = withCredentials
    this.#Source = Source
    this.#send = send
  }

  /** Adds members (or updates known ones); the stream changes at the end of the microtask. */
  join(members: readonly Member[]): void {
    for (const member of members) {
      const merge = this.#entries.has(member.id)
      this.#remove(member.id)
      this.#entries.set(member.id, { ...member, merge })
    }
    this.#schedule()
  }

  /** Removes members by id, or every member whose id starts with `prefix`. */
  leave(ids: readonly string[], prefix?: string): void {
    for (const id of prefix === undefined ? ids : [...this.#entries.keys()].filter((id) => id.startsWith(prefix))) this.#remove(id)
    this.#schedule()
  }

  /** Closes every `EventSource` and forgets every member. */
  close(): void {
    // A catch-up leg is closed when its last member goes; the main stream
    // may have none left until the next plan.
    for (const { leg } of this.#entries.values()) if (leg !== undefined) this.#close(leg)
    if (this.#main !== undefined) this.#close(this.#main)
    this.#entries.clear()
  }

  #remove(id: string): void {
    const entry = this.#entries.get(id)
    if (entry === undefined) return
    this.#entries.delete(id)
    const leg = entry.leg
    leg?.members.delete(entry)
    if (leg !== undefined && !leg.main && leg.members.size === 0) this.#close(leg)
  }

  #schedule(): void {
    if (this.#scheduled) return
    this.#scheduled = true
    queueMicrotask(() => this.#plan())
  }

  // Decides, for the members not on a catch-up, where the main stream must
  // start and who goes to a catch-up, then reopens the main stream if its
  // topics or its start changed.
  #plan(): void {
    this.#scheduled = false
    const main = this.#main
    const last = this.#last
    const candidates = [...this.#entries.values()].filter((entry) => entry.leg === undefined || entry.leg === main)
    // A main stream with no position yet starts at the oldest id asked for;
    // one with a position only goes back for members leaving a catch-up.
    let start = last
    for (const { need, merge, split } of candidates) {
      if (typeof need === 'string' && !split && (start === undefined || (compareIds(need, start) < 0 && (merge || last === undefined)))) start = need
    }
    const want: Entry[] = []
    const aside = new Map<string, Entry[]>()
    let fresh = false
    for (const entry of candidates) {
      const { need } = entry
      const ok = !entry.split && (need === undefined || need === false || (need === true ? start === undefined : entry.merge || compareIds(need, start as string) >= 0))
      if (ok) {
        want.push(entry)
        // Its topic's snapshot may have gone by on the current stream already.
        if (need === true && entry.leg !== main) fresh = true
      } else {
        const key = `${typeof need === 'string' ? `#${need}` : ''}${entry.split ? `\n${entry.topic}` : ''}`
        aside.set(key, [...(aside.get(key) ?? []), entry])
      }
    }
    for (const [key, entries] of aside) this.#open(entries, key[0] === '#' ? (entries[0]?.need as string) : undefined, false)

    const topics = [...new Set(want.map((entry) => entry.topic))]
    if (topics.length === 0) {
      if (main !== undefined) this.#close(main)
      this.#main = this.#last = undefined
    } else if (main === undefined || fresh || start !== last || topics.length !== main.topics.length || !topics.every((topic) => main.topics.includes(topic))) {
      if (main !== undefined) this.#close(main)
      this.#main = this.#open(want, start, true)
      this.#last = start
    } else {
      const joining = want.filter((entry) => entry.leg !== main)
      const ids = joining.map((entry) => entry.id)
      for (const entry of joining) {
        entry.leg = main
        main.members.add(entry)
        if (main.ready) entry.need = undefined
      }
      if (main.ready) this.#send(ids, { type: 'ready', main: true, id: last as string })
      this.#send(ids, { type: 'state', main: true, state: main.state })
    }
  }

  // A new leg is connecting: members that are open stay so until it fails,
  // since a reopen is not a drop; new members become open with it.
  #open(entries: Entry[], from: string | undefined, main: boolean): Leg {
    const topics = [...new Set(entries.map((entry) => entry.topic))]
    const base = this.#base
    const query = topics.map((topic) => `topic=${encodeURIComponent(topic)}`).join('&')
    const url = `${base}${base.includes('?') ? '&' : '?'}${query}${from === undefined ? '' : `&lastEventId=${encodeURIComponent(from)}`}`
    let source: EventSourceLike
    try {
      source = new this.#Source(url, { withCredentials: this.#withCredentials })
    } catch (error) {
      // A constructor that throws (a polyfill, an URL it cannot take) must
      // not escape from the microtask: the members get a refusal instead,
      // from a stand-in that fires nothing.
      source = { readyState: 2, addEventListener() {}, close() {} }
      queueMicrotask(() => {
        if (!leg.closed) this.#refused(leg, `${url} could not be opened: ${String(error)}`, false)
      })
    }
    const leg: Leg = { source, url, topics, members: new Set(entries), main, state: 'connecting' }
    for (const entry of entries) {
      entry.leg?.members.delete(entry)
      entry.leg = leg
    }
    const on = (type: string, listener: (event: MessageEvent<string>) => void): void =>
      source.addEventListener(type, (event) => {
        if (!leg.closed) listener(event)
      })
    on('open', () => {
      for (const topic of topics) this.#confirmed.add(topic)
      this.#become(leg, 'open')
    })
    // An EventSource that gives up (HTTP error status, wrong content type) is
    // CLOSED when it fires `error`; after a mere drop it is CONNECTING again.
    on('error', (event) => {
      const detail = (event as { message?: string }).message
      const why = detail ? `: ${detail}` : ''
      // Every topic of the path, from every tab, is on one stream: past the
      // server's maxTopics, that stream is refused as a whole.
      const many = topics.length > 1 ? ` (${topics.length} topics: over maxTopics?)` : ''
      if (source.readyState === 2) return this.#refused(leg, `the server refused the stream ${url}${why}${many}`, true)
      // The end that follows a revocation: a reopen without the revoked topics, not a drop.
      if (leg.revoked) return this.#reopen(leg)
      // Until the next ready, a snapshot's position is not known again.
      leg.ready = false
      this.#become(leg, 'connecting', 'ERR_PATCHWIRE_DISCONNECTED', `the stream ${url} dropped; reconnecting${why}`)
    })
    on('patch', (event) => {
      const id = event.lastEventId
      if (main) this.#last = id
      const frame = splitFrame(event.data, topics)
      const ops = frame === undefined ? undefined : parseOps(frame[1])
      if (ops === undefined) return this.#fail(leg, frame?.[0], event)
      const topic = (frame as [string, string])[0]
      // Having a later frame of its topic, a member is in step, wherever it started.
      for (const entry of this.#tell(leg, topic, { type: 'patch', main, topic, id, ops })) {
        entry.need = main ? undefined : id
        if (main) entry.merge = false
      }
    })
    on('snapshot', (event) => {
      const frame = splitFrame(event.data, topics)
      if (frame === undefined) return this.#fail(leg, undefined, event)
      const to = this.#tell(leg, frame[0], { type: 'snapshot', main, topic: frame[0], data: frame[1] })
      // Before the main stream's ready, the snapshot's position is not known yet.
      if (main && leg.ready) for (const entry of to) if (entry.need === true) entry.need = undefined
    })
    on('reset', (event) => {
      const id = event.lastEventId
      if (main && id !== '') this.#last = id
      const { reason, topic } = parseControl(event.data)
      // Until its snapshot comes, such a member must not be resumed without one.
      for (const entry of this.#tell(leg, topic, { type: 'reset', main, reason, id })) if (entry.snapshot) entry.need = true
    })
    // A revoked topic's subscriptions end for good (the server ends the
    // stream after its revoked frames); the stream is reopened without it
    // once it ends, so that a revoked frame of another topic that follows
    // on the same stream still arrives.
    on('revoked', (event) => {
      const { topic } = parseControl(event.data)
      if (topic === undefined || !topics.includes(topic)) return this.#fail(leg, undefined, event)
      leg.revoked = true
      for (const entry of this.#tell(leg, topic, { type: 'revoked', main, topic })) {
        this.#entries.delete(entry.id)
        leg.members.delete(entry)
      }
      if (leg.members.size === 0) this.#reopen(leg)
    })
    on('ready', (event) => {
      const id = event.lastEventId
      const members = [...leg.members]
      if (main) {
        this.#last = id
        leg.ready = true
        for (const entry of members) {
          entry.need = undefined
          entry.merge = false
        }
      } else {
        this.#close(leg)
        for (const entry of members) {
          entry.need = later(typeof entry.need === 'string' ? entry.need : undefined, id) as string
          entry.leg = undefined
          entry.merge = true
          entry.split = false
        }
        this.#schedule()
      }
      this.#tell(leg, undefined, { type: 'ready', main, id })
    })
    return leg
  }

  // Closes a leg that a revocation ends, or a refused one that is split,
  // and plans the streams again: its members rejoin from where they stand.
  #reopen(leg: Leg): void {
    this.#close(leg)
    for (const entry of leg.members) entry.leg = undefined
    this.#schedule()
  }

  // Tells the members of a leg that an event of `topic` concerns (all of
  // them when it names none), and returns them: the frame's handler moves
  // them on after they have it.
  #tell(leg: Leg, topic: string | undefined, event: StreamEvent): Entry[] {
    const to = [...leg.members].filter((entry) => topic === undefined || entry.topic === topic)
    this.#send(to.map((entry) => entry.id), event)
    return to
  }

  #become(leg: Leg, state: SubscriptionState, code?: PatchwireErrorCode, message?: string): void {
    if (leg.state === state && code === undefined) return
    leg.state = state
    this.#tell(leg, undefined, { type: 'state', main: leg.main, state, code, message })
  }

  // A frame that is not what the protocol says (a patch that is not op
  // tuples, a frame naming no topic of the stream) is skipped.
  #fail(leg: Leg, topic: string | undefined, event: MessageEvent<string>): void {
    this.#tell(leg, topic, { type: 'error', main: leg.main, code: 'ERR_PATCHWIRE_FRAME', message: `bad ${event.type} frame on ${leg.url}: ${event.data.slice(0, 100)}` })
  }

  // A stream of several topics, one of which may be the refused one, is
  // tried again without the topics no server has accepted yet, and each of
  // those alone; a stream that cannot be split refuses its members for good,
  // with the likely causes when `explain`.
  #refused(leg: Leg, message: string, explain: boolean): void {
    const members = [...leg.members]
    const suspect = (entry: Entry): boolean => !leg.main || !this.#confirmed.has(entry.topic)
    if (leg.topics.length > 1 && members.some(suspect)) {
      for (const entry of members) entry.split = suspect(entry)
      return this.#reopen(leg)
    }
    this.#close(leg)
    for (const entry of members) this.#entries.delete(entry.id)
    if (leg.main) this.#last = undefined
    const refuse = (why: string): void => this.#become(leg, 'closed', 'ERR_PATCHWIRE_REFUSED', message + why)
    if (explain) void explainRefusal(leg.url, this.#withCredentials).then(refuse)
    else refuse('')
  }

  #close(leg: Leg): void {
    if (this.#main === leg) this.#main = undefined
    leg.closed = true
    leg.source.close()
  }
}
