// Where a handoff's time goes: named moments, in ms from an origin, logged in
// one line by each side ("Handoff timing …"). Boot engineers read it in the
// journal; the stress tool and bench/handoff.ts parse it into phases.
import { performance } from 'node:perf_hooks';

export class Timeline {
  private readonly marks: Array<[string, number]> = [];

  /** `origin`: a performance.now() value; 0 is the start of this process. */
  private constructor(private readonly origin: number) {}

  /** From this process's start (node's timeOrigin), with node's own bootstrap as the first moment. */
  static sinceProcessStart(): Timeline {
    const timeline = new Timeline(0);
    timeline.marks.push(['node ready', performance.nodeTiming.bootstrapComplete]);
    return timeline;
  }

  static fromNow(): Timeline {
    return new Timeline(performance.now());
  }

  mark(name: string): void {
    this.marks.push([name, performance.now() - this.origin]);
  }

  /** "a 1.0, b 2.5": the moments in the order they happened. */
  format(): string {
    return this.marks.map(([name, ms]) => `${name} ${ms.toFixed(1)}`).join(', ');
  }
}

/** Parses what format() wrote back into moments (for the stress tool). */
export function parseTimeline(text: string): Map<string, number> {
  const moments = new Map<string, number>();
  for (const part of text.split(', ')) {
    const match = /^(.+) (-?[0-9.]+)$/.exec(part);
    if (match !== null) moments.set(match[1], Number(match[2]));
  }
  return moments;
}
