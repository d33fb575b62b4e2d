/**
 * Why a stream was refused, in words a newcomer can act on. An
 * `EventSource` that gives up says nothing of why (no status, no body), so
 * the client asks once more with `fetch` and reads what the server
 * answered: the app's page at a wrong path (200 `text/plain` or
 * `text/html`), a rule of the handler (403 naming `topicPrefix` or
 * `authorize`), or nothing at all, which is what a page sees of a CORS
 * failure or a server that is down.
 */

/** How much of a refusal's body goes into the message. */
const BODY_CHARS = 300

/**
 * Asks the stream's URL again and says what the answer means.
 * @param url - the refused stream's URL, as the `EventSource` was given it
 * @param withCredentials - whether the stream sent credentials (the probe does too)
 * @returns a sentence to append to the refusal's message, starting with `: `;
 * never rejects
 * @internal
 */
export async function explainRefusal(url: string, withCredentials: boolean): Promise<string> {
  const base = typeof location === 'undefined' || typeof location.href !== 'string' ? undefined : location.href
  let target: URL
  try {
    target = new URL(url, base)
  } catch {
    return ''
  }
  if (typeof fetch !== 'function' || (target.protocol !== 'http:' && target.protocol !== 'https:')) return ''
  const abort = new AbortController()
  let response: Response
  try {
    response = await fetch(target, { credentials: withCredentials ? 'include' : 'same-origin', headers: { Accept: 'text/event-stream' }, signal: abort.signal, cache: 'no-store' })
  } catch {
    return `: no HTTP answer reached the page. Likely causes: CORS (the events are on another origin than the page, and the server does not answer this origin with Access-Control-Allow-Origin${withCredentials ? ', and Access-Control-Allow-Credentials: true since withCredentials is set' : ''}; see docs/troubleshooting.md), or the server is down or unreachable`
  }
  const type = response.headers.get('content-type') ?? ''
  if (response.ok && type.startsWith('text/event-stream')) {
    abort.abort()
    return ': the same request was accepted when asked again, so the refusal was passing (the server was restarting or overloaded: 503); subscribe again'
  }
  let body = ''
  try {
    body = (await response.text()).trim()
  } catch {
    // A body that breaks off leaves the status to go by.
  }
  const said = body === '' ? '' : ` "${body.length > BODY_CHARS ? `${body.slice(0, BODY_CHARS)}…` : body}"`
  return `: ${response.status} ${type === '' ? 'with no content type' : type.split(';')[0]}${said}. ${causes(response.status, type, target.pathname)}`
}

function causes(status: number, type: string, path: string): string {
  if (status === 200) {
    return `Likely cause: a wrong path. ${path} is answered by the app, not by the events handler: give the handler's path option to subscribe (its default is the page's directory + __events), and let the handler see the request before the app`
  }
  if (status === 404) return `Likely cause: a wrong path. Nothing answers ${path}: give subscribe the path of createHandler({ path })`
  if (status === 403) return 'Likely cause: the handler\'s topicPrefix or authorize refused the topic (the server\'s answer above says which)'
  if (status === 401) return 'Likely cause: the request carried no credentials the server accepts: on another origin, set withCredentials'
  if (status === 429 || status === 503) return 'Likely cause: the server is busy or shutting down; subscribe again later'
  if (status === 500) return 'Likely cause: the handler\'s authorize threw; see the server\'s log (onError)'
  return type.startsWith('text/plain') ? 'The server\'s answer above says why' : `Likely cause: ${path} is not an events handler`
}
