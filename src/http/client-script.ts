/**
 * `GET <path>/client.js`: the browser client, served by the handler itself
 * as ONE ES module, so that a page needs no bundler, no import map and no
 * path into `node_modules`. `npm run build` bundles `patchwire/client` into
 * `dist/browser/client.js` (esbuild); the handler reads that file once and
 * serves it from memory with an ETag.
 */

/** The file name the client is served under, below the handler's path. @internal */
export const CLIENT_SCRIPT = 'client.js'

/**
 * Where the bundle is, relative to this module: from `dist/http/` and from
 * `src/http/` (tests under tsx) alike, `../../dist/` is the package's `dist/`.
 */
const BUNDLE = new URL('../../dist/browser/client.js', import.meta.url)

/**
 * Cached for five minutes, then revalidated (a 304 without a body while it
 * has not changed): a page picks up the client of an upgraded server within
 * that, and a reload gets it at once.
 */
const CACHE_CONTROL = 'public, max-age=300'

/** What a transport writes for a request of the client script. @internal */
export interface ClientScriptAnswer {
  readonly status: number
  readonly headers: Readonly<Record<string, string>>
  /** `undefined` for a 304 and for HEAD. */
  readonly body: Uint8Array<ArrayBuffer> | string | undefined
}

/**
 * Whether a request path asks for the client script: `<path>/client.js`
 * with the `path` option; without it (a handler mounted under a prefix,
 * which the framework strips), any path whose last segment is `client.js`.
 * @internal
 */
export function isClientScriptPath(pathname: string, handlerPath: string | undefined): boolean {
  if (handlerPath === undefined) return pathname === `/${CLIENT_SCRIPT}` || pathname.endsWith(`/${CLIENT_SCRIPT}`)
  return pathname === `${handlerPath.replace(/\/$/, '')}/${CLIENT_SCRIPT}`
}

/**
 * The answer to a GET or HEAD of the client script: 200 with the module, 304
 * when `If-None-Match` names its ETag, or 404 naming the fix when the
 * bundle cannot be read (a checkout that was not built, Deno without
 * `--allow-read`, a runtime without a file system). Never rejects.
 * @param method - `GET` or `HEAD`
 * @param ifNoneMatch - the request's `If-None-Match` header, if any
 * @param bundle - the bundle's URL (tests give a missing one)
 * @internal
 */
export async function answerClientScript(method: string, ifNoneMatch: string | null | undefined, bundle: URL = BUNDLE): Promise<ClientScriptAnswer> {
  const script = await load(bundle)
  if (script instanceof Error) {
    // ENOENT: a checkout that was not built; on Deno, a missing --allow-read.
    const message = `patchwire: the browser client bundle ${bundle.pathname} could not be read (${script.message}): run npm run build (on Deno, allow reading it: --allow-read), or set serveClient: false and serve the client yourself`
    return { status: 404, headers: { 'Content-Type': 'text/plain; charset=utf-8', 'Cache-Control': 'no-store' }, body: message }
  }
  const headers = {
    'Content-Type': 'text/javascript; charset=utf-8',
    'Cache-Control': CACHE_CONTROL,
    ETag: script.etag,
    // A module script from another origin is fetched with CORS; the file is
    // public code, the same for everyone.
    'Access-Control-Allow-Origin': '*',
    'X-Content-Type-Options': 'nosniff',
  }
  if (ifNoneMatch !== undefined && ifNoneMatch !== null && matches(ifNoneMatch, script.etag)) return { status: 304, headers, body: undefined }
  return { status: 200, headers: { ...headers, 'Content-Length': String(script.bytes.length) }, body: method === 'HEAD' ? undefined : script.bytes }
}

interface LoadedScript {
  readonly bytes: Uint8Array<ArrayBuffer>
  readonly etag: string
}

/** One read per bundle for the process, whichever handler asks first. */
const loaded = new Map<string, Promise<LoadedScript | Error>>()

function load(bundle: URL): Promise<LoadedScript | Error> {
  let script = loaded.get(bundle.href)
  if (script === undefined) {
    // A missing bundle is read again next time: it may be built meanwhile.
    script = read(bundle).then((result) => {
      if (result instanceof Error) loaded.delete(bundle.href)
      return result
    })
    loaded.set(bundle.href, script)
  }
  return script
}

// `node:fs` is imported when the script is first asked for, not with the
// module: the Fetch handler also runs where there is no file system (then
// the script is a 404 that names serveClient: false). Node, Bun and Deno
// all have node:fs.
async function read(bundle: URL): Promise<LoadedScript | Error> {
  try {
    const { readFile } = await import('node:fs/promises')
    const bytes = new Uint8Array(await readFile(bundle))
    const digest = new Uint8Array(await crypto.subtle.digest('SHA-256', bytes))
    const etag = `"${Array.from(digest.subarray(0, 12), (byte) => byte.toString(16).padStart(2, '0')).join('')}"`
    return { bytes, etag }
  } catch (error) {
    return error instanceof Error ? error : new Error(String(error))
  }
}

/** `If-None-Match`: `*`, or a list of ETags, weak ones (`W/"…"`) compared weakly (RFC 9110 section 13.1.2). */
function matches(header: string, etag: string): boolean {
  return header.split(',').some((tag) => {
    const trimmed = tag.trim()
    return trimmed === '*' || trimmed === etag || trimmed === `W/${etag}`
  })
}
