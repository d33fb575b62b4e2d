/**
 * The browser client's size: bytes of an app bundle minified and gzipped,
 * the way an app ships it (issue 24, target 3: ≤ 4.0 KB for `subscribe`
 * and `applyPatch`).
 *
 * Run: `node --import tsx bench/client-size.ts` (add `--files` for the
 * minified bytes each source file puts into the app bundle).
 *
 * Method: each app is bundled from `src/client/index.ts` by esbuild with
 * `--bundle --minify --format=esm` (no splitting: whatever the app can
 * reach is counted, tab sharing included), then compressed by `gzip -9`
 * (node:zlib at level 9 when there is no `gzip` binary; they differ by a
 * byte or two). The same as, by hand:
 *
 * ```sh
 * echo "import { subscribe, applyPatch } from './src/client/index.ts'; console.log(subscribe, applyPatch)" > app.ts
 * node_modules/.bin/esbuild app.ts --bundle --minify --format=esm | gzip -9 | wc -c
 * ```
 *
 * A size, not a timing: deterministic for one esbuild version, so it needs
 * no baseline run beside it. Not run by `npm test`. `npm run size`
 * (bench/size.ts) measures the built package and what each framework
 * binding adds; this one reads the source, needs no build, and breaks the
 * client down by entry and by file.
 */
import { spawnSync } from 'node:child_process'
import { dirname, join, relative } from 'node:path'
import { fileURLToPath } from 'node:url'
import { gzipSync } from 'node:zlib'
import { build } from 'esbuild'

const root = join(dirname(fileURLToPath(import.meta.url)), '..')

/** Each app: the client names it imports. */
const APPS: ReadonlyArray<[name: string, imports: string]> = [
  ['subscribe + applyPatch (the target)', 'subscribe, applyPatch'],
  ['subscribe only', 'subscribe'],
  ['applyPatch only', 'applyPatch'],
  ['subscribe + applyPatch + diff', 'subscribe, applyPatch, diff'],
]

async function bundle(imports: string): Promise<{ code: Buffer; inputs: Record<string, number> }> {
  const result = await build({
    stdin: { contents: `import { ${imports} } from './src/client/index.ts'\nconsole.log(${imports})\n`, resolveDir: root, loader: 'ts' },
    bundle: true,
    minify: true,
    format: 'esm',
    write: false,
    metafile: true,
    logLevel: 'silent',
  })
  const output = Object.values(result.metafile.outputs)[0]
  const inputs: Record<string, number> = {}
  for (const [file, { bytesInOutput }] of Object.entries(output?.inputs ?? {})) inputs[relative(root, join(root, file))] = bytesInOutput
  return { code: Buffer.from(result.outputFiles[0]?.contents ?? new Uint8Array()), inputs }
}

function gzip(code: Buffer): { bytes: number; by: string } {
  const run = spawnSync('gzip', ['-9'], { input: code })
  if (run.status === 0) return { bytes: run.stdout.length, by: 'gzip -9' }
  return { bytes: gzipSync(code, { level: 9 }).length, by: 'zlib level 9' }
}

const rows: string[] = []
let perFile: Record<string, number> | undefined
let by = ''
for (const [name, imports] of APPS) {
  const { code, inputs } = await bundle(imports)
  const gz = gzip(code)
  by = gz.by
  // The first app is the target: its files are the ones listed.
  perFile ??= inputs
  rows.push(`| ${name} | ${code.length} | ${gz.bytes} |`)
}
console.log(`client size, esbuild --bundle --minify --format=esm, ${by}\n`)
console.log('| app | B min | B min+gzip |\n| --- | ---: | ---: |')
for (const row of rows) console.log(row)
if (process.argv.includes('--files')) {
  console.log('\n| file (in the target app) | B min |\n| --- | ---: |')
  for (const [file, bytes] of Object.entries(perFile ?? {}).sort((a, b) => b[1] - a[1])) console.log(`| ${file} | ${bytes} |`)
}
