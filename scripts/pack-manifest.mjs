// The package.json that goes into the tarball, without the `prepare` script.
//
// `prepare` builds dist/ for a git install (`npm install github:…`) and for a
// clone's own `npm install`. In the tarball it builds nothing (dist/ is in
// it), but npm 11 lists every dependency with a `prepare` script that comes
// from a non-registry source (a tarball file, a git URL) under "install
// scripts not yet covered by allowScripts". So `prepack` (which npm runs on
// pack and publish, not on install) builds and drops `prepare` from
// package.json; `postpack` puts the file back as it was. A pack that fails
// in between leaves the copy in .package.json.packing, and the next
// `strip` or `restore` puts it back first.
//
// Usage: node scripts/pack-manifest.mjs strip | restore
import { existsSync, readFileSync, renameSync, writeFileSync } from 'node:fs'

const MANIFEST = 'package.json'
const SAVED = '.package.json.packing'

const restore = () => {
  if (existsSync(SAVED)) renameSync(SAVED, MANIFEST)
}

const command = process.argv[2]
if (command === 'restore') {
  restore()
} else if (command === 'strip') {
  restore()
  const text = readFileSync(MANIFEST, 'utf8')
  const manifest = JSON.parse(text)
  writeFileSync(SAVED, text)
  delete manifest.scripts.prepare
  writeFileSync(MANIFEST, `${JSON.stringify(manifest, null, 2)}\n`)
} else {
  console.error('usage: node scripts/pack-manifest.mjs strip | restore')
  process.exit(2)
}
