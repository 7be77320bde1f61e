// SPDX-License-Identifier: Apache-2.0
/* The machine a run was made on, so that figures can be compared honestly. */
import os from 'node:os';

export interface MachineInfo {
  cpuModel: string;
  cores: number;
  memoryGiB: number;
  node: string;
  v8: string;
  platform: string;
  /** 1, 5 and 15 minute load averages when the description was taken. */
  loadavg: [number, number, number];
}

export function describeMachine(): MachineInfo {
  const cpus = os.cpus();
  const [l1, l5, l15] = os.loadavg();
  return {
    cpuModel: cpus[0]?.model.trim() ?? 'unknown',
    cores: os.availableParallelism?.() ?? cpus.length,
    memoryGiB: Math.round((os.totalmem() / 2 ** 30) * 10) / 10,
    node: process.version,
    v8: process.versions.v8,
    platform: `${os.platform()} ${os.release()} ${os.arch()}`,
    loadavg: [round2(l1 ?? 0), round2(l5 ?? 0), round2(l15 ?? 0)],
  };
}

export function loadAverage(): number {
  return round2(os.loadavg()[0] ?? 0);
}

export function machineLine(m: MachineInfo): string {
  return `${m.cores} × ${m.cpuModel}, ${m.memoryGiB} GiB RAM, ${m.platform}, Node ${m.node} (V8 ${m.v8}), load average ${m.loadavg.join(' / ')}`;
}

function round2(x: number): number {
  return Math.round(x * 100) / 100;
}
