/**
 * The options `subscribe` takes, checked before anything starts: a
 * misspelled one (`onSnapShot`) would otherwise be ignored, and the page
 * would fail later, far from the typo.
 */

/**
 * Refuses an options argument that is not an object, and any option that
 * `subscribe` does not know, naming it (with the known option it most
 * likely meant) and listing the valid ones.
 * @param options - what `subscribe` was given
 * @param known - every option's name, in the order the message lists them
 * @throws TypeError
 * @internal
 */
export function checkSubscribeOptions(options: unknown, known: readonly string[]): void {
  if (options === null || typeof options !== 'object') {
    throw new TypeError(`subscribe: options must be an object, got ${options === null ? 'null' : typeof options}`)
  }
  const unknown = Object.keys(options).filter((name) => !known.includes(name))
  if (unknown.length === 0) return
  const named = unknown.map((name) => {
    const meant = known.find((option) => option.toLowerCase() === name.toLowerCase())
    return meant === undefined ? `"${name}"` : `"${name}" (did you mean "${meant}"?)`
  })
  throw new TypeError(`subscribe: unknown option${unknown.length === 1 ? '' : 's'} ${named.join(', ')}; the options are ${known.join(', ')}`)
}

/**
 * The handler path a subscription connects to: `path` when given, else
 * the page's directory followed by `__events` (see {@link defaultPath}).
 * @param pathname - the page's `location.pathname`, `undefined` outside a page
 * @throws TypeError when there is no path and no page
 * @internal
 */
export function resolvePath(path: string | undefined, pathname: string | undefined): string {
  if (path !== undefined) return path
  if (pathname === undefined) throw new TypeError('subscribe: options.path is required outside a page')
  return defaultPath(pathname)
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
