/**
 * Bundle size: what an application ships of patchwire, and what each
 * framework binding adds to an application that already uses the client.
 *
 * Run: `npm run size` (builds first; the apps import the built package by
 * name, as an application does, with `patchwire/*` resolved to dist/).
 *
 * Method: each app below is bundled with esbuild as
 * `esbuild --bundle --minify --format=esm` does (the framework itself is
 * external: the app has it already, and it is not patchwire's weight), then
 * compressed with gzip level 9 (node:zlib, the same DEFLATE as `gzip -9`
 * with its 18-byte wrapper). A binding's cost is its app's size minus the
 * base app's, measured in the same run from the same build. The target of
 * issue 26 is at most 512 bytes per binding.
 */
import { gzipSync } from 'node:zlib'
import { fileURLToPath } from 'node:url'
import { build, version } from 'esbuild'

const DIST = fileURLToPath(new URL('../dist/', import.meta.url))

/** What every app does with the client: subscribe, and apply each patch. */
const BASE = `import { applyPatch, subscribe } from 'patchwire/client'

let state = {}
subscribe('room', (ops) => { state = applyPatch(state, ops) }, { onSnapshot: (snapshot) => { state = snapshot } })
`

/** The apps: the base, then the base plus one binding used as its guide shows. */
const APPS: { name: string; code: string }[] = [
  { name: 'the app: `subscribe` + `applyPatch` (base)', code: BASE },
  { name: '+ `patchwire/react` `useLive`', code: `${BASE}import { useLive } from 'patchwire/react'\nexport const Orders = () => useLive('orders', { path: '/events' })\n` },
  { name: '+ `patchwire/svelte` `live`', code: `${BASE}import { live } from 'patchwire/svelte'\nexport const orders = live('orders', { path: '/events' })\n` },
  { name: '+ `patchwire/vue` `useLive`', code: `${BASE}import { useLive } from 'patchwire/vue'\nexport const setup = () => useLive('orders', { path: '/events' })\n` },
  {
    name: '+ all three (their shared part once)',
    code: `${BASE}import { useLive } from 'patchwire/react'\nimport { live } from 'patchwire/svelte'\nimport { useLive as useLiveVue } from 'patchwire/vue'\nexport const all = () => [useLive('a'), live('b'), useLiveVue('c')]\n`,
  },
]

const TARGET_BYTES = 512

/** The app bundled and minified: its size raw and gzipped. */
async function measure(code: string): Promise<{ min: number; gzip: number }> {
  const result = await build({
    stdin: { contents: code, resolveDir: DIST, loader: 'js', sourcefile: 'app.mjs' },
    bundle: true,
    minify: true,
    format: 'esm',
    platform: 'browser',
    write: false,
    logLevel: 'error',
    external: ['react', 'svelte', 'svelte/*', 'vue'],
    alias: {
      'patchwire/client': `${DIST}client/index.js`,
      'patchwire/react': `${DIST}bindings/react.js`,
      'patchwire/svelte': `${DIST}bindings/svelte.js`,
      'patchwire/vue': `${DIST}bindings/vue.js`,
    },
  })
  const bytes = result.outputFiles[0]?.contents ?? new Uint8Array()
  return { min: bytes.length, gzip: gzipSync(bytes, { level: 9 }).length }
}

const rows = []
for (const app of APPS) rows.push({ ...app, ...(await measure(app.code)) })
const base = rows[0]?.gzip ?? 0
console.log(`esbuild ${version}, Node ${process.version}\n`)
console.log('| app | B min | B min+gzip | added to the base | ≤ 512 B |')
console.log('| --- | ---: | ---: | ---: | :---: |')
for (const [i, row] of rows.entries()) {
  const added = row.gzip - base
  console.log(`| ${row.name} | ${row.min} | ${row.gzip} | ${i === 0 ? '' : added} | ${i === 0 || i === rows.length - 1 ? '' : added <= TARGET_BYTES ? 'yes' : 'NO'} |`)
}
