import { Listr, type ListrTaskWrapper } from 'listr2';
import type { Reporter } from '../run/events.js';
import { colours, eventLines, type HumanOptions, type Streams } from './output.js';

interface Deferred {
  promise: Promise<void>;
  resolve: () => void;
  reject: (e: Error) => void;
}
function deferred(): Deferred {
  let resolve!: () => void;
  let reject!: (e: Error) => void;
  const promise = new Promise<void>((res, rej) => {
    resolve = res;
    reject = rej;
  });
  return { promise, resolve, reject };
}

/**
 * Live progress on a terminal with listr2: one list per step, one line per host showing the task
 * it is on; after each step, the same change/failure lines as the plain renderer.
 */
export function liveReporter(s: Streams, opts: HumanOptions): Reporter {
  const c = colours(s.colour);
  let check = false;
  let chain: Promise<void> = Promise.resolve();
  let current: { hosts: Map<string, { done: Deferred; wrapper?: ListrTaskWrapper<unknown, never, never>; failed: boolean; changed: number }>; lines: string[] } | undefined;
  const print = (lines: string[]) => {
    if (lines.length) chain = chain.then(() => s.out(`${lines.join('\n')}\n`));
  };
  return {
    emit(e) {
      if (e.type === 'run_start') check = e.check;
      if (e.type === 'step_start') {
        const hosts = new Map(e.hosts.map((h) => [h, { done: deferred(), failed: false, changed: 0 } as NonNullable<typeof current>['hosts'] extends Map<string, infer V> ? V : never]));
        current = { hosts, lines: [] };
        const list = new Listr(
          e.hosts.map((h) => ({
            title: h,
            task: async (_ctx: unknown, task: ListrTaskWrapper<unknown, never, never>) => {
              const st = hosts.get(h);
              if (!st) return;
              st.wrapper = task;
              await st.done.promise;
              task.title = `${h}: ${st.failed ? 'failed' : st.changed ? `${st.changed} ${check ? 'to change' : 'changed'}` : 'ok'}`;
            },
          })),
          // clearOutput: the per-host lines are progress only; what changed is printed after the step.
          { concurrent: true, exitOnError: false, rendererOptions: { collapseErrors: true, clearOutput: true } } as never,
        );
        const stepTitle = e.step;
        chain = chain.then(() => s.out(`${c.bold(`== ${stepTitle}`)}\n`)).then(() => list.run().then(() => undefined, () => undefined));
        return;
      }
      if (e.type === 'task' && current) {
        const st = current.hosts.get(e.host);
        if (st) {
          if (st.wrapper) st.wrapper.output = e.task;
          if (e.status === 'changed') st.changed++;
          if (e.status === 'failed') st.failed = true;
        }
        current.lines.push(...eventLines(e, { ...opts, check }, c));
        return;
      }
      if (e.type === 'step_end' && current) {
        for (const [, st] of current.hosts) {
          if (st.failed) st.done.reject(new Error('failed'));
          else st.done.resolve();
        }
        print([...current.lines, ...eventLines(e, { ...opts, check }, c)]);
        current = undefined;
        return;
      }
      if (current && (e.type === 'handler' || e.type === 'gate')) {
        current.lines.push(...eventLines(e, { ...opts, check }, c));
        return;
      }
      print(eventLines(e, { ...opts, check }, c));
    },
    close: () => chain,
  };
}
