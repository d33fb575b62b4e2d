/**
 * A headless Chromium for the browser tests, found or brought: Debian's
 * `/usr/bin/chromium` when it is there, else the one the `@sparticuz/chromium`
 * devDependency ships (extracted to the temporary directory on first use),
 * so that `npm install && npm test` needs no browser installed by hand.
 *
 * `PATCHWIRE_TEST_CHROMIUM` overrides the choice: `npm` ignores the system
 * browser (to show that the npm one works), `system` requires it, and a path
 * names an executable.
 */
import { existsSync } from 'node:fs'
import { chromium, type Browser } from 'playwright-core'

const SYSTEM = '/usr/bin/chromium'

/** Flags for a closed network: no update checks, no QUIC, no GPU, no sandbox (containers). */
export const CHROMIUM_FLAGS = ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync']

/** Which Chromium {@link launchChromium} started. */
export interface LaunchedChromium {
  browser: Browser
  /** `system`, `npm`, or `env` (a path from `PATCHWIRE_TEST_CHROMIUM`). */
  origin: 'system' | 'npm' | 'env'
  executablePath: string
}

/**
 * Launches headless Chromium through playwright-core (never a browser that
 * playwright downloads).
 * @returns the browser and where its executable came from
 * @throws Error when `PATCHWIRE_TEST_CHROMIUM=system` and there is no system Chromium,
 * or the named executable does not exist
 */
export async function launchChromium(): Promise<LaunchedChromium> {
  const choice = process.env['PATCHWIRE_TEST_CHROMIUM'] ?? ''
  let origin: LaunchedChromium['origin']
  let executablePath: string
  if (choice === 'system' || (choice === '' && existsSync(SYSTEM))) {
    if (!existsSync(SYSTEM)) throw new Error(`PATCHWIRE_TEST_CHROMIUM=system, but there is no ${SYSTEM}`)
    origin = 'system'
    executablePath = SYSTEM
  } else if (choice === 'npm' || choice === '') {
    origin = 'npm'
    const { default: packaged } = await import('@sparticuz/chromium')
    executablePath = await packaged.executablePath()
  } else {
    if (!existsSync(choice)) throw new Error(`PATCHWIRE_TEST_CHROMIUM names ${choice}, which does not exist (use npm, system or a path)`)
    origin = 'env'
    executablePath = choice
  }
  const browser = await chromium.launch({ executablePath, args: CHROMIUM_FLAGS, headless: true })
  return { browser, origin, executablePath }
}
