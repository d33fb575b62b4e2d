/**
 * The page on one origin (https://app.example.com), the events on another
 * (this server): the stream and the client's module are CORS requests, so
 * this server names the page's origin. `Access-Control-Allow-Credentials`
 * is for a page that subscribes with `{ withCredentials: true }`: its
 * cookies then reach `authorize` and `snapshot`. Without credentials that
 * header can go, and `Access-Control-Allow-Origin` may be `*`.
 */
import http from 'node:http'
import { createHandler, type Handler } from 'patchwire'

export function eventsServer(pageOrigin: string, events: Handler = createHandler({ path: '/events' })): http.Server {
  return http.createServer((req, res) => {
    res.setHeader('Vary', 'Origin')
    if (req.headers.origin === pageOrigin) {
      res.setHeader('Access-Control-Allow-Origin', pageOrigin)
      res.setHeader('Access-Control-Allow-Credentials', 'true')
    }
    events(req, res)
  })
}
