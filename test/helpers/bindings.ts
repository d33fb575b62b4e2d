/**
 * For the tests of the framework bindings: `patchwire/<entry>` mapped to its
 * source, as package.json `exports` maps it to the build, so that Vite and
 * esbuild build the bindings as they are in this tree.
 */
import { fileURLToPath } from 'node:url'

/** `patchwire/react`, `/svelte`, `/vue` and `/client` → their source files. */
export function bindingAliases(): Record<string, string> {
  const source = (file: string): string => fileURLToPath(new URL(`../../src/${file}`, import.meta.url))
  return {
    'patchwire/react': source('bindings/react.ts'),
    'patchwire/svelte': source('bindings/svelte.ts'),
    'patchwire/vue': source('bindings/vue.ts'),
    'patchwire/client': source('client/index.ts'),
  }
}
