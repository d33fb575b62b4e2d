import { readFileSync } from 'node:fs'
import http from 'node:http'
import { createHandler, publish } from 'patchwire'

const state = { counter: 0 }
const events = createHandler({ path: '/events', snapshot: () => state })
const page = readFileSync(new URL('index.html', import.meta.url))

const server = http.createServer((req, res) => {
  // The handler answers /events and /events/client.js; the rest is the app.
  events(req, res, () => res.writeHead(200, { 'Content-Type': 'text/html' }).end(page))
})
server.listen(process.env.PORT ?? 3000, () => console.log(`http://localhost:${server.address().port}`))

setInterval(() => {
  state.counter++
  publish('counter', [['replace', '/counter', state.counter]])
}, 1000)
