/**
 * Reading a stream request's URL: which topic, and where to resume.
 * Refusals are values, not exceptions: a bad request is ordinary input.
 */

/** A request the handler refuses, with its status and plain-text reason. @internal */
export interface Refusal {
  status: 400 | 403 | 404 | 405 | 414 | 500 | 503
  message: string
}

/** What a stream request asks for. @internal */
export interface StreamRequest {
  topic: string
  /** The `lastEventId` query parameter, for clients that cannot set headers. */
  lastEventId: string | undefined
}

const CONTROL_CHARACTERS = /[\u0000-\u001f\u007f]/

/**
 * The path of a request URL, without its query.
 * @internal
 */
export function pathOf(url: string): string {
  let start = 0
  // The absolute form (`GET http://host/events?…`, RFC 9112 section 3.2.2)
  // names scheme and authority before the path.
  if (!url.startsWith('/')) {
    const authority = url.indexOf('://')
    if (authority !== -1) start = url.indexOf('/', authority + 3)
    if (start === -1) return '/'
  }
  const q = url.indexOf('?', start)
  return url.slice(start, q === -1 ? url.length : q)
}

/**
 * Reads `topic` and `lastEventId` from a request URL's query.
 * @internal
 */
export function readStreamRequest(url: string, maxTopicLength: number): StreamRequest | Refusal {
  const q = url.indexOf('?')
  let topic: string | undefined
  let lastEventId: string | undefined
  if (q !== -1) {
    for (const pair of url.slice(q + 1).split('&')) {
      const eq = pair.indexOf('=')
      const rawName = eq === -1 ? pair : pair.slice(0, eq)
      const name = rawName === 'topic' || rawName === 'lastEventId' ? rawName : decode(rawName)
      if (name === 'topic') {
        if (topic !== undefined) return { status: 400, message: 'Repeated "topic" query parameter: give exactly one topic per stream' }
        const raw = eq === -1 ? '' : pair.slice(eq + 1)
        // One UTF-16 code unit takes at most 9 characters of the URL (three
        // percent-encoded bytes), so this is over the limit whatever it decodes to.
        if (raw.length > maxTopicLength * 9) return tooLong(maxTopicLength)
        topic = decode(raw)
        if (topic === undefined) return { status: 400, message: 'Malformed "topic": broken percent-encoding' }
      } else if (name === 'lastEventId' && lastEventId === undefined && eq !== -1) {
        // An undecodable id is kept raw: it will not match, and the stream gets a reset.
        const raw = pair.slice(eq + 1)
        lastEventId = decode(raw) ?? raw
      }
    }
  }
  if (topic === undefined || topic === '') {
    return { status: 400, message: 'Missing "topic" query parameter: request ?topic=<name>' }
  }
  if (CONTROL_CHARACTERS.test(topic)) return { status: 400, message: 'Malformed "topic": control characters are not allowed' }
  if (topic.length > maxTopicLength) return tooLong(maxTopicLength)
  return { topic, lastEventId }
}

function tooLong(maxTopicLength: number): Refusal {
  return { status: 414, message: `"topic" is longer than ${maxTopicLength} characters (option maxTopicLength)` }
}

function decode(component: string): string | undefined {
  try {
    return decodeURIComponent(component.includes('+') ? component.replaceAll('+', ' ') : component)
  } catch {
    return undefined
  }
}
