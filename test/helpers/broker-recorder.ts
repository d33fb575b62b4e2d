/**
 * A broker listener that records `(payload, id)` and `onGap` calls in one
 * sequence, for the tests of every broker.
 */
export function recorder() {
  const events: ({ payload: string, id: string } | 'gap')[] = []
  return {
    events,
    listener: (payload: string, id?: string) => { events.push({ payload, id: id ?? '' }) },
    onGap: () => { events.push('gap') },
    payloads: () => events.flatMap((event) => event === 'gap' ? [] : [event.payload]),
    gaps: () => events.filter((event) => event === 'gap').length,
  }
}
