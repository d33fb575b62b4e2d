import type { SubscribeOptions } from './subscribe.js'

/**
 * The options `subscribe` takes, checked before anything starts: a
 * misspelled one (`onSnapShot`) would otherwise be ignored, and the page
 * would fail later, far from the typo.
 */

// Every option, as the type names it: a new option that is not listed here
// fails the typecheck instead of being refused at run time.
const KNOWN = {
  path: true,
  withCredentials: true,
  onSnapshot: true,
  lastEventId: true,
  onReset: true,
  onError: true,
  onStateChange: true,
  onRevoked: true,
  EventSource: true,
  shareTabs: true,
  debug: true,
} as const satisfies Record<keyof SubscribeOptions, true>

/**
 * Refuses an options argument that is not an object, and any option that
 * `subscribe` does not know, naming it (with the known option it most
 * likely meant) and listing the valid ones.
 * @throws TypeError
 * @internal
 */
export function checkSubscribeOptions(options: unknown): void {
  if (options === null || typeof options !== 'object') {
    throw new TypeError(`subscribe: options must be an object, got ${options === null ? 'null' : typeof options}`)
  }
  const unknown = Object.keys(options).filter((name) => !Object.hasOwn(KNOWN, name))
  if (unknown.length === 0) return
  const named = unknown.map((name) => {
    const meant = Object.keys(KNOWN).find((known) => known.toLowerCase() === name.toLowerCase())
    return meant === undefined ? `"${name}"` : `"${name}" (did you mean "${meant}"?)`
  })
  throw new TypeError(`subscribe: unknown option${unknown.length === 1 ? '' : 's'} ${named.join(', ')}; the options are ${Object.keys(KNOWN).join(', ')}`)
}

/**
 * The handler path a page connects to when `subscribe` is given none: the
 * page's directory followed by `__events`. A last segment with a dot is a
 * file (`/reports/x.html` → `/reports/__events`); any other is a directory
 * (`/dashboard` and `/dashboard/` → `/dashboard/__events`).
 * @param pathname - the page's `location.pathname`
 * @internal
 */
export function defaultPath(pathname: string): string {
  const slash = pathname.lastIndexOf('/')
  const last = pathname.slice(slash + 1)
  const dir = last.includes('.') ? pathname.slice(0, slash) : pathname.replace(/\/$/, '')
  return `${dir}/__events`
}
