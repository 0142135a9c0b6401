// Reads a metricstream event stream with the npm `eventsource` package (the client the original Go
// service documents) and prints what it sees as JSON lines, for tests/test_eventsource.py:
//   {"type": "open"}                                    once the stream is accepted
//   {"type": "message", "id": ..., "data": ...}         unnamed control messages (`connected`)
//   {"type": "<event type>", "id": ..., "data": ...}    metric_created and metric_reading_created
//   {"type": "reset", "id": ..., "data": ...}           the server could not resume (not counted)
//   {"type": "error", "message": ...}                   connection trouble (the client retries)
//   {"type": "timeout", "received": n}                  gave up waiting; exit status 2
// Usage: node listen.mjs <stream url> <metric events to wait for> [timeout seconds, default 20]
import { EventSource } from "eventsource";

const [url, wanted, timeoutSeconds = "20"] = process.argv.slice(2);
if (!url || !(Number(wanted) > 0)) {
  console.error("usage: node listen.mjs <stream url> <metric events to wait for> [timeout seconds]");
  process.exit(64);
}

const emit = (line) => process.stdout.write(`${JSON.stringify(line)}\n`);
const source = new EventSource(url);
let received = 0;

const timer = setTimeout(() => {
  emit({ type: "timeout", received });
  process.exitCode = 2;
  source.close();
}, Number(timeoutSeconds) * 1000);

const print = (event) => emit({ type: event.type, id: event.lastEventId, data: event.data });

source.addEventListener("open", () => emit({ type: "open" }));
source.addEventListener("error", (event) => emit({ type: "error", message: event.message ?? "" }));
source.addEventListener("message", print);
source.addEventListener("reset", print);
for (const type of ["metric_created", "metric_reading_created"]) {
  source.addEventListener(type, (event) => {
    print(event);
    received += 1;
    if (received >= Number(wanted)) {
      clearTimeout(timer);
      source.close(); // nothing left to keep node running: it exits with status 0
    }
  });
}
