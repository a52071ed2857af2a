// CPU time used by a process tree (Linux /proc), to report what the headless viewers cost the
// machine: a benchmark on 2 shared cores is only meaningful next to its CPU load.
import fs from 'node:fs';

const TICK = 100; // USER_HZ on Linux

function readStat(pid) {
  try {
    const s = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
    const f = s.slice(s.lastIndexOf(')') + 2).split(' ');
    // fields after "comm": state(0) ppid(1) ... utime(11) stime(12)
    return { ppid: Number(f[1]), cpu: (Number(f[11]) + Number(f[12])) / TICK };
  } catch {
    return null;
  }
}

/** Seconds of CPU used so far by the live descendants of `root` (not including root). */
export function descendantsCpuSeconds(root = process.pid) {
  const all = new Map();
  for (const d of fs.readdirSync('/proc')) {
    if (!/^\d+$/.test(d)) continue;
    const s = readStat(d);
    if (s) all.set(Number(d), s);
  }
  const kids = new Map();
  for (const [pid, s] of all) {
    if (!kids.has(s.ppid)) kids.set(s.ppid, []);
    kids.get(s.ppid).push(pid);
  }
  let total = 0;
  const stack = [...(kids.get(root) || [])];
  while (stack.length) {
    const p = stack.pop();
    total += all.get(p)?.cpu || 0;
    stack.push(...(kids.get(p) || []));
  }
  return Math.round(total * 10) / 10;
}
