"""How many lines a second `parse_lines` reads, on one core, for typical bodies.

    .venv/bin/python benchmarks/line_protocol.py [--lines 100000] [--batch 5000] [--runs 5]

Each kind of line is repeated `--lines` times with a rising timestamp, cut into bodies of `--batch` lines
(bytes, as an HTTP body or a TCP read arrives) and parsed; the best and median of the runs are printed, in
lines and in samples (readings) a second of this process's CPU time, so that other work on a shared machine
does not count. The TCP listener's target is 100,000 lines/s end to end, so the parser should leave most
of the time to the store and the broadcast.
"""

from __future__ import annotations

import argparse
import statistics
import time

from metricstream.domain.line_protocol import parse_lines

T0 = 1_700_000_000_000_000_000
KINDS = {
    # Telegraf's cpu input: two tags, three fields
    "telegraf cpu": "cpu,host=server01,cpu=cpu0 usage_user=1.5,usage_system=0.3,usage_idle=98.2 {t}",
    # a sensor's one reading, as firmware writes it
    "sensor": "temperature,sensor=s1 value=21.5 {t}",
    # no tags, no timestamp: the shortest line
    "bare": "temperature value=21.5",
    # an escaped space in a tag: the careful path
    "escaped": "cpu,host=server\\ 01,cpu=cpu0 usage_user=1.5,usage_system=0.3,usage_idle=98.2 {t}",
}


def bodies(template: str, lines: int, batch: int) -> list[bytes]:
    text = [template.format(t=T0 + i * 1_000_000_000) for i in range(lines)]
    return ["\n".join(text[i : i + batch]).encode() for i in range(0, lines, batch)]


def measure(template: str, lines: int, batch: int, runs: int) -> tuple[float, float, int]:
    """Best and median lines/s, and the samples one line gives."""
    parts = bodies(template, lines, batch)
    rates = []
    samples = 0
    for _ in range(runs):
        start = time.process_time()
        samples = 0
        for body in parts:
            parsed = parse_lines(body)
            assert not parsed.errors, parsed.errors[:3]
            samples += len(parsed.samples)
        rates.append(lines / (time.process_time() - start))
    return max(rates), statistics.median(rates), samples // lines


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--lines", type=int, default=100_000)
    parser.add_argument("--batch", type=int, default=5_000)
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()
    print(f"{'line':<14} {'best lines/s':>13} {'median lines/s':>15} {'best samples/s':>15}")
    for name, template in KINDS.items():
        best, median, per_line = measure(template, args.lines, args.batch, args.runs)
        print(f"{name:<14} {best:>13,.0f} {median:>15,.0f} {best * per_line:>15,.0f}")


if __name__ == "__main__":
    main()
