/**
 * A dependency-free SVG line chart for the fan-out bench: side-by-side
 * panels sharing one x axis (streams per process), one line per variant.
 * Plain string building; the output is a standalone `.svg` file.
 */

/** One line: a variant's values at each N. */
export interface ChartSeries {
  name: string
  color: string
  /** [N, value] pairs; a missing value leaves a gap */
  points: Array<[number, number | undefined]>
}

/** One panel of the chart. */
export interface ChartPanel {
  title: string
  /** y-axis unit, shown in the title */
  unit: string
  series: ChartSeries[]
}

const PANEL_WIDTH = 420
const PANEL_HEIGHT = 320
const MARGIN = { top: 76, right: 24, bottom: 48, left: 64 }
const LEGEND_HEIGHT = 28

/**
 * @param title - the chart title
 * @param subtitle - a second line (machine, Node version)
 * @param panels - the panels, left to right
 * @returns the SVG document
 */
export function renderChart(title: string, subtitle: string, panels: ChartPanel[]): string {
  const width = panels.length * PANEL_WIDTH
  const height = PANEL_HEIGHT + LEGEND_HEIGHT
  const body = panels.map((panel, i) => renderPanel(panel, i * PANEL_WIDTH)).join('\n')
  const legendSeries = panels[0]?.series ?? []
  const legend = legendSeries
    .map((s, i) => {
      const x = MARGIN.left + i * 150
      const y = PANEL_HEIGHT + 12
      return `<line x1="${x}" y1="${y}" x2="${x + 24}" y2="${y}" stroke="${s.color}" stroke-width="2.5"/><circle cx="${x + 12}" cy="${y}" r="3.5" fill="${s.color}"/><text x="${x + 30}" y="${y + 4}">${escape(s.name)}</text>`
    })
    .join('')
  return [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}" viewBox="0 0 ${width} ${height}" font-family="system-ui, sans-serif" font-size="12">`,
    `<rect width="100%" height="100%" fill="#fff"/>`,
    `<text x="${width / 2}" y="20" text-anchor="middle" font-size="15" font-weight="600">${escape(title)}</text>`,
    `<text x="${width / 2}" y="37" text-anchor="middle" fill="#555">${escape(subtitle)}</text>`,
    body,
    legend,
    '</svg>',
    '',
  ].join('\n')
}

function renderPanel(panel: ChartPanel, offsetX: number): string {
  const plotW = PANEL_WIDTH - MARGIN.left - MARGIN.right
  const plotH = PANEL_HEIGHT - MARGIN.top - MARGIN.bottom
  const xs = [...new Set(panel.series.flatMap((s) => s.points.map(([n]) => n)))].sort((a, b) => a - b)
  const values = panel.series.flatMap((s) => s.points.flatMap(([, v]) => (v === undefined ? [] : [v])))
  const yMax = niceCeiling(Math.max(0, ...values))
  const xMax = Math.max(1, ...xs)
  const x = (n: number): number => offsetX + MARGIN.left + (n / xMax) * plotW
  const y = (v: number): number => MARGIN.top + plotH - (v / yMax) * plotH
  const parts: string[] = []
  parts.push(`<text x="${offsetX + MARGIN.left}" y="${MARGIN.top - 16}" font-weight="600">${escape(`${panel.title} (${panel.unit})`)}</text>`)
  for (let i = 0; i <= 4; i++) {
    const v = (yMax * i) / 4
    parts.push(`<line x1="${x(0)}" y1="${y(v)}" x2="${x(xMax)}" y2="${y(v)}" stroke="#e5e5e5"/>`)
    parts.push(`<text x="${x(0) - 6}" y="${y(v) + 4}" text-anchor="end" fill="#555">${formatTick(v)}</text>`)
  }
  for (const n of xs) {
    parts.push(`<line x1="${x(n)}" y1="${y(0)}" x2="${x(n)}" y2="${y(0) + 4}" stroke="#555"/>`)
    parts.push(`<text x="${x(n)}" y="${y(0) + 18}" text-anchor="middle" fill="#555">${n.toLocaleString('en-US')}</text>`)
  }
  parts.push(`<line x1="${x(0)}" y1="${y(0)}" x2="${x(xMax)}" y2="${y(0)}" stroke="#555"/>`)
  parts.push(`<line x1="${x(0)}" y1="${y(0)}" x2="${x(0)}" y2="${y(yMax)}" stroke="#555"/>`)
  parts.push(`<text x="${x(xMax / 2)}" y="${PANEL_HEIGHT - 8}" text-anchor="middle" fill="#333">streams (N)</text>`)
  for (const s of panel.series) {
    const defined = s.points.filter((p): p is [number, number] => p[1] !== undefined).sort((a, b) => a[0] - b[0])
    if (defined.length === 0) continue
    const path = defined.map(([n, v], i) => `${i === 0 ? 'M' : 'L'}${x(n).toFixed(1)},${y(v).toFixed(1)}`).join(' ')
    parts.push(`<path d="${path}" fill="none" stroke="${s.color}" stroke-width="2.5"/>`)
    for (const [n, v] of defined) parts.push(`<circle cx="${x(n).toFixed(1)}" cy="${y(v).toFixed(1)}" r="3.5" fill="${s.color}"><title>${escape(`${s.name}, N=${n}: ${formatTick(v)} ${panel.unit}`)}</title></circle>`)
  }
  return parts.join('\n')
}

/** The smallest round number (a few steps per decade) at or above `v`, so that the quarter grid lines fall on round numbers. */
function niceCeiling(v: number): number {
  if (v <= 0) return 1
  const step = 10 ** Math.floor(Math.log10(v))
  for (const m of [1, 1.2, 1.6, 2, 2.4, 3, 4, 5, 6, 8, 10]) if (m * step >= v) return m * step
  return 10 * step
}

function formatTick(v: number): string {
  return v >= 100 ? String(Math.round(v)) : String(Number(v.toPrecision(3)))
}

function escape(text: string): string {
  return text.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;')
}
