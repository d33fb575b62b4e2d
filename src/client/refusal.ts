/**
 * Why a stream was refused, in words a newcomer can act on. An
 * `EventSource` that gives up says nothing of why (no status, no body), so
 * the client asks once more with `fetch` and reads what the server
 * answered. The message keeps to the status, the content type, the
 * server's body and one short likely cause; docs/troubleshooting.md has
 * the long explanation of each, so that it is not shipped in every page.
 */

/**
 * Asks the stream's URL again and says what the answer means.
 * @param url - the refused stream's URL, as the `EventSource` was given it
 * @param withCredentials - whether the stream sent credentials (the probe does too)
 * @returns a clause to append to the refusal's message, starting with `: `;
 * never rejects
 * @internal
 */
export async function explainRefusal(url: string, withCredentials: boolean): Promise<string> {
  let target: URL
  try {
    target = new URL(url, pageHref())
  } catch {
    return ''
  }
  if (typeof fetch !== 'function' || !/^https?:$/.test(target.protocol)) return ''
  const abort = new AbortController()
  let response: Response
  try {
    response = await fetch(target, { credentials: withCredentials ? 'include' : 'same-origin', headers: { Accept: 'text/event-stream' }, signal: abort.signal, cache: 'no-store' })
  } catch {
    return `: no HTTP answer. Likely cause: CORS (Access-Control-Allow-Origin${withCredentials ? ' and -Allow-Credentials, for withCredentials' : ''}) or the server is down${SEE}`
  }
  const type = response.headers.get('content-type') ?? ''
  if (response.ok && type.startsWith('text/event-stream')) {
    abort.abort()
    return ': accepted when asked again (a passing 503?); subscribe again'
  }
  let body = ''
  try {
    body = (await response.text()).trim()
  } catch {
    // A body that breaks off leaves the status to go by.
  }
  const { status } = response
  // text/plain is how a handler refuses: its body names the rule.
  const cause = CAUSES[status] ?? (type.startsWith('text/plain') ? '' : 'not an events handler')
  return `: ${status} ${type.split(';')[0] || 'no content type'}${body === '' ? '' : ` "${body.length > 300 ? `${body.slice(0, 300)}…` : body}"`}${cause === '' ? '' : `. Likely cause: ${cause}`}${SEE}`
}

/**
 * The URL a relative path is resolved against: the page's, or a worker's
 * script's; `undefined` where there is none (Node, say).
 * @internal
 */
export function pageHref(): string | undefined {
  return typeof location === 'undefined' || typeof location.href !== 'string' ? undefined : location.href
}

const SEE = '; see docs/troubleshooting.md'

// One clause per status, the fact a newcomer acts on.
const CAUSES: Record<number, string> = {
  // 200: the app answered, not the events handler.
  200: 'a wrong path',
  404: 'a wrong path',
  403: 'topicPrefix or authorize',
  401: 'no credentials (withCredentials?)',
  429: 'server busy',
  503: 'server busy',
  500: 'authorize threw',
}
