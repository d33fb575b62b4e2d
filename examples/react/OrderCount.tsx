import { useLive } from 'patchwire/react'

interface Orders {
  count: number
  latest: string
}

export function OrderCount({ topic }: { topic: string }) {
  const orders = useLive<Orders>(topic, { path: '/events' })
  if (orders === undefined) return <p>Loading…</p>
  return <p>{orders.count} orders, latest {orders.latest}</p>
}
