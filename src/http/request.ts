import type { Refusal } from '../core/transport.js'

/**
 * Reading a stream request's target: which path, which topics, where to
 * resume. Refusals are values, not exceptions: a bad request is ordinary
 * input. Everything here is linear in the target's length with a small
 * constant, whatever a client sends.
 */

/** What a stream request asks for. @internal */
export interface StreamQuery {
  readonly topics: string[]
  /** The `lastEventId` query parameter, for clients that cannot set headers. */
  lastEventId: string | undefined
}

/** The limits a query is read within. @internal */
export interface QueryLimits {
  readonly maxTopics: number
  readonly maxTopicLength: number
  readonly topicPrefix: string
}

const CONTROL_CHARACTERS = /[\u0000-\u001f\u007f]/
const BROKEN_ESCAPE = /%(?![0-9A-Fa-f]{2})/
/** Room in a target for everything but its topics (the path, `lastEventId`, separators). */
const TARGET_SLACK = 4096

/**
 * The path of a request target, without its query: for the origin form
 * (`/events?…`) and the absolute form (`http://host/events?…`, RFC 9112
 * section 3.2.2, where the authority ends at the first `/`, `?` or `#`). The
 * authority form (`host:443`, CONNECT only) and the asterisk form (`*`,
 * OPTIONS only) have no path and come back as they are, so they match no
 * `path` option.
 * @internal
 */
export function pathOf(target: string): string {
  let start = 0
  if (!target.startsWith('/')) {
    const scheme = target.indexOf('://')
    if (scheme === -1) return target
    start = scheme + 3
    while (start < target.length && target[start] !== '/' && target[start] !== '?' && target[start] !== '#') start++
    // An empty path is "/" (RFC 9112 section 3.2.2).
    if (target[start] !== '/') return '/'
  }
  let end = start
  while (end < target.length && target[end] !== '?' && target[end] !== '#') end++
  return target.slice(start, end)
}

/**
 * Reads the `topic` parameters (one or more) and `lastEventId` from a
 * request target's query. Parameter names are matched as written: clients
 * never percent-encode these two, so no other name is ever decoded.
 * @internal
 */
export function readStreamQuery(target: string, limits: QueryLimits): StreamQuery | Refusal {
  const { maxTopics, maxTopicLength } = limits
  // One UTF-16 code unit takes at most 9 characters of a target (three
  // percent-encoded bytes): anything longer cannot be a query within the limits.
  if (target.length > maxTopics * (maxTopicLength * 9 + 7) + TARGET_SLACK) {
    return { status: 414, message: 'The request target is longer than any set of topics the handler allows (options maxTopics, maxTopicLength)' }
  }
  // A "?" after a "#" belongs to the fragment: then there is no query.
  const hash = target.indexOf('#')
  const end = hash === -1 ? target.length : hash
  const q = target.indexOf('?')
  const topics: string[] = []
  let lastEventId: string | undefined
  if (q !== -1 && q < end) {
    for (let start = q + 1; start <= end;) {
      let amp = target.indexOf('&', start)
      if (amp === -1 || amp > end) amp = end
      const eq = target.indexOf('=', start)
      const hasValue = eq !== -1 && eq < amp
      const nameEnd = hasValue ? eq : amp
      if (isName(target, start, nameEnd, 'topic')) {
        if (topics.length === maxTopics) {
          return { status: 400, message: `Too many topics: a stream carries at most ${maxTopics} "topic" parameters (option maxTopics)` }
        }
        const raw = hasValue ? target.slice(eq + 1, amp) : ''
        if (raw.length > maxTopicLength * 9) return tooLong(maxTopicLength)
        const topic = decode(raw)
        if (topic === undefined) return { status: 400, message: 'Malformed "topic": broken percent-encoding' }
        const problem = checkTopic(topic, topics, limits)
        if (problem !== undefined) return problem
        topics.push(topic)
      } else if (lastEventId === undefined && hasValue && isName(target, start, nameEnd, 'lastEventId')) {
        // An undecodable id is kept raw: it will not match, and the stream gets a reset.
        const raw = target.slice(eq + 1, amp)
        lastEventId = decode(raw) ?? raw
      }
      start = amp + 1
    }
  }
  if (topics.length === 0) return { status: 400, message: 'Missing "topic" query parameter: request ?topic=<name> (or several: ?topic=a&topic=b)' }
  return { topics, lastEventId }
}

function checkTopic(topic: string, topics: readonly string[], limits: QueryLimits): Refusal | undefined {
  if (topic === '') return { status: 400, message: 'Missing "topic" query parameter: a topic cannot be empty' }
  if (CONTROL_CHARACTERS.test(topic)) return { status: 400, message: 'Malformed "topic": control characters are not allowed' }
  if (topic.length > limits.maxTopicLength) return tooLong(limits.maxTopicLength)
  if (topics.includes(topic)) return { status: 400, message: 'Repeated "topic": name each topic of a stream once' }
  if (!topic.startsWith(limits.topicPrefix)) return outsidePrefix(topic, limits.topicPrefix)
  return undefined
}

// The prefix is configuration the client must follow, not a secret; the
// topic is the client's own, shown back so that a stream of several topics
// says which one.
function outsidePrefix(topic: string, prefix: string): Refusal {
  return { status: 403, message: `Forbidden: the topic ${JSON.stringify(topic)} does not start with the handler's topicPrefix ${JSON.stringify(prefix)}` }
}

function tooLong(maxTopicLength: number): Refusal {
  return { status: 414, message: `"topic" is longer than ${maxTopicLength} characters (option maxTopicLength)` }
}

function isName(target: string, start: number, end: number, name: string): boolean {
  return end - start === name.length && target.startsWith(name, start)
}

/** Decodes a query component; undefined when its percent-encoding is broken. */
function decode(component: string): string | undefined {
  if (!component.includes('%') && !component.includes('+')) return component
  if (BROKEN_ESCAPE.test(component)) return undefined
  try {
    return decodeURIComponent(component.includes('+') ? component.replaceAll('+', ' ') : component)
  } catch {
    // Escapes of bytes that are not UTF-8: one throw at most per parameter kept.
    return undefined
  }
}
