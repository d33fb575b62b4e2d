/**
 * The README and the guides under docs/ cannot drift from the files they
 * show, and their links cannot break. Every example file the tests run
 * (examples/metrics, examples/runtimes, and the framework bindings'
 * examples/react, examples/svelte, examples/vue) is shown somewhere, each copy under
 * an `<!-- <path> -->` comment is the file as it is, and no such comment is
 * left without a copy under it. Every link resolves where the pages are
 * read: a relative link to a file that exists and that npm ships with the
 * page (node_modules, unpkg, jsDelivr), a link into this repository on
 * GitHub to a file that exists, and every `#anchor` to a heading of its
 * target page.
 */
import assert from 'node:assert/strict'
import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs'
import path from 'node:path'
import { before, describe, it } from 'node:test'
import { packedFiles, ROOT } from './helpers/package.ts'

const TIMEOUT = { timeout: 120_000 }

/** The pages: the README and every guide. */
const PAGES = ['README.md', ...readdirSync(path.join(ROOT, 'docs')).filter((name) => name.endsWith('.md')).map((name) => `docs/${name}`)]

/** The files the pages must show: the recipes that the tests run as they are. */
const RECIPES = ['examples/access', 'examples/metrics', 'examples/runtimes', 'examples/react', 'examples/svelte', 'examples/vue', 'examples/quickstart', 'examples/cors'].flatMap((dir) =>
  readdirSync(path.join(ROOT, dir)).filter((name) => /\.(ts|tsx|mjs|html|svelte|vue)$/.test(name)).map((name) => `${dir}/${name}`),
)

/** This repository on GitHub, from package.json `repository`: links into it are checked against the files here. */
const REPOSITORY = (() => {
  const { repository } = JSON.parse(readFileSync(path.join(ROOT, 'package.json'), 'utf8')) as { repository: { url: string } }
  const match = /github\.com\/([^/]+\/[^/.]+)/.exec(repository.url)
  assert.ok(match, `package.json repository.url is not a GitHub URL: ${repository.url}`)
  return match[1] ?? ''
})()

const read = (file: string): string => readFileSync(path.join(ROOT, file), 'utf8')

describe('README.md and docs/*.md', () => {
  let shipped: Set<string>

  before(async () => {
    shipped = new Set(await packedFiles(ROOT))
  }, TIMEOUT)

  it('lists its pages: the README and the guides', () => {
    assert.ok(PAGES.length > 2, `only ${PAGES.join(', ')}`)
    assert.ok(RECIPES.length > 1, `only ${RECIPES.join(', ')}`)
  })

  it('shows every recipe file (examples/metrics, runtimes, quickstart, cors) exactly as the file is, and names only files it copies exactly', () => {
    const copies = PAGES.flatMap((page) => shownFiles(read(page)).copies.map((copy) => ({ page, ...copy })))
    const drifted = copies.filter(({ file, code }) => !existsSync(path.join(ROOT, file)) || code !== read(file)).map(({ page, file }) => `${page}: ${file}`)
    assert.deepEqual(drifted, [], 'copy each file as it is, in a ```ts (```js, ```html) block right under <!-- <path> -->')
    const shown = new Set(copies.map(({ file }) => file))
    assert.deepEqual(RECIPES.filter((file) => !shown.has(file)), [], 'show each recipe file in a page, in a ```ts block right under <!-- <path> -->')
  })

  it('has a ```ts (```js, ```html) block right under every <!-- <path> --> comment', () => {
    const orphans = PAGES.flatMap((page) => shownFiles(read(page)).orphans.map((file) => `${page}: ${file}`))
    assert.deepEqual(orphans, [], 'a <!-- <path> --> comment without a ```ts block right under it checks nothing')
  })

  it('ships every page in the npm package', () => {
    assert.deepEqual(PAGES.filter((page) => !shipped.has(page)), [], 'package.json "files" must ship README.md and docs/*.md')
  })

  it('links only to shipped files that exist, to this repository\'s files, to other absolute URLs, or to headings that exist', () => {
    const broken = PAGES.flatMap((page) => badLinks(page, read(page), shipped).map((target) => `${page}: ${target}`))
    assert.deepEqual(broken, [], 'fix these links')
  })

  it('the checks fail on a drifted page (control)', () => {
    const file = read('examples/metrics/prometheus.ts')
    const page = `<!-- examples/metrics/prometheus.ts -->\n\`\`\`ts\n${file}\`\`\`\n\n<!-- examples/runtimes/bun.ts -->\nno block here\n`
    const drifted = shownFiles(page.replace('patchwire_connections', 'patchwire_streams'))
    assert.equal(drifted.copies.length, 1, 'the one copy is found')
    assert.notEqual(drifted.copies[0]?.code, file, 'a changed copy differs from its file')
    assert.equal(shownFiles(page).copies[0]?.code, file, 'the copy as it is equals its file')
    assert.deepEqual(drifted.orphans, ['examples/runtimes/bun.ts'], 'a comment without a block is reported')

    const readme = [
      '[a](docs/API.md) [b](#nowhere) [c](LICENSE) [d](https://x.example/y) [e](docs/missing.md)',
      '[f](docs/API.md#nowhere) [g](docs/API.md#createhandleroptions) [h](test/docs.test.ts) [i](../outside.md)',
      `[j](https://github.com/${REPOSITORY}/blob/main/docs/nothing.md) [k](https://github.com/${REPOSITORY}/blob/main/docs/API.md#broker)`,
      `[l](https://github.com/${REPOSITORY}/tree/main/examples/runtimes) ![m](https://raw.githubusercontent.com/${REPOSITORY}/main/docs/dashboard.png)`,
      `[n](https://github.com/${REPOSITORY}/blob/main/docs/API.md#nowhere) [\`o\`](docs/client.md#one-connection-per-origin)`,
      '## Somewhere',
      '[q](#somewhere) [r](#somewhere-1) [s](#somewhere-2)',
      '## Somewhere',
      '```sh',
      '# not a heading',
      '[t](nowhere.md)',
      '```',
      '[u](#not-a-heading)',
      '[v]: docs/also-missing.md',
    ].join('\n')
    assert.deepEqual(badLinks('README.md', readme, shipped), [
      '#nowhere', 'docs/missing.md', 'docs/API.md#nowhere', 'test/docs.test.ts', '../outside.md',
      `https://github.com/${REPOSITORY}/blob/main/docs/nothing.md`, `https://github.com/${REPOSITORY}/blob/main/docs/API.md#nowhere`,
      '#somewhere-2', '#not-a-heading', 'docs/also-missing.md',
    ], 'every kind of broken link is reported, and only those')
    // From a guide, links are relative to docs/: the README and a sibling resolve; a file npm does not ship does not.
    assert.deepEqual(badLinks('docs/server.md', '[a](../README.md#error-codes) [b](API.md#broker) [c](../bench/README.md) [d](server.md)', shipped), ['../bench/README.md'], 'a link to an unshipped file from a guide is reported')
  })
})

/**
 * The ```ts (```tsx, ```svelte, ```vue) blocks right under an `<!-- <path> -->` comment, and the
 * comments that name a file but have no such block under them.
 */
function shownFiles(markdown: string): { copies: { file: string; code: string }[]; orphans: string[] } {
  const copies: { file: string; code: string }[] = []
  const orphans: string[] = []
  for (const match of markdown.matchAll(/^<!-- (\S+\/\S+\.\w+) -->\n(?:```(?:ts|tsx|js|html|svelte|vue)\n([\s\S]*?)^```$)?/gm)) {
    const [, file = '', code] = match
    if (code === undefined) orphans.push(file)
    else copies.push({ file, code })
  }
  return { copies, orphans }
}

/**
 * The links of `page` that do not resolve: relative links to a file that
 * does not exist, is outside the repository or is not shipped (when the
 * page itself ships), links to this repository on GitHub to a file that
 * does not exist, and anchors that are not a heading of their target page.
 * Other absolute URLs are not fetched.
 */
function badLinks(page: string, markdown: string, shipped: ReadonlySet<string>): string[] {
  const prose = withoutCode(markdown)
  const targets = [
    ...[...prose.matchAll(/\]\(([^)\s]+)\)/g)].map((match) => ({ index: match.index, target: match[1] ?? '' })),
    ...[...prose.matchAll(/^ {0,3}\[[^\]]+\]:\s*(\S+)/gm)].map((match) => ({ index: match.index, target: match[1] ?? '' })),
    ...[...prose.matchAll(/\b(?:href|src)="([^"]+)"/g)].map((match) => ({ index: match.index, target: match[1] ?? '' })),
  ].sort((a, b) => a.index - b.index).map(({ target }) => target)
  const repository = new RegExp(`^https://(?:github\\.com/${REPOSITORY}/(?:blob|tree)/[^/]+|raw\\.githubusercontent\\.com/${REPOSITORY}/[^/]+)/([^#]+)(#.*)?$`)
  return targets.filter((target) => {
    if (target.startsWith('#')) return !headingAnchors(markdown).has(target.slice(1))
    const inRepository = repository.exec(target)
    if (inRepository) return !resolves(inRepository[1] ?? '', inRepository[2])
    if (/^[a-z][a-z0-9+.-]*:/i.test(target)) return false
    const [file = '', anchor] = target.split(/(?=#)/)
    const relative = path.posix.normalize(path.posix.join(path.posix.dirname(page), decodeURIComponent(file)))
    if (relative.startsWith('../') || (shipped.has(page) && !shipped.has(relative))) return true
    return !resolves(relative, anchor)
  })
}

/** True when `file` exists in the repository and, when an `#anchor` is given, is a page with that heading. */
function resolves(file: string, anchor: string | undefined): boolean {
  const absolute = path.join(ROOT, file)
  if (!existsSync(absolute)) return false
  if (anchor === undefined) return true
  return statSync(absolute).isFile() && file.endsWith('.md') && headingAnchors(read(file)).has(anchor.slice(1))
}

/** The text without its fenced code blocks, whose lines are neither headings nor links. */
function withoutCode(markdown: string): string {
  return markdown.replace(/^ {0,3}(```|~~~)[^\n]*\n[\s\S]*?^ {0,3}\1[^\n]*$/gm, '')
}

/**
 * The anchors of a page's headings, as GitHub makes them: a heading whose
 * slug came before gets `-1`, `-2`, … (the client's entries of the types it
 * shares with the server, say).
 */
function headingAnchors(markdown: string): Set<string> {
  const anchors = new Set<string>()
  const seen = new Map<string, number>()
  for (const [, heading = ''] of withoutCode(markdown).matchAll(/^#{1,6} (.+)$/gm)) {
    const base = slug(heading)
    const count = seen.get(base) ?? 0
    seen.set(base, count + 1)
    anchors.add(count === 0 ? base : `${base}-${count}`)
  }
  return anchors
}

/** GitHub's anchor for a heading: lower case, punctuation dropped, spaces to hyphens. */
function slug(heading: string): string {
  return heading.trim().toLowerCase().replace(/[^\p{L}\p{N}\p{M}_\- ]/gu, '').replace(/ /g, '-')
}
