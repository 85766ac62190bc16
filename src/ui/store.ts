/**
 * The page's state (zustand): the guests of the manifest, the machine's phase and speed,
 * what is loading, the shared buffers the worker handed over, and the messages the user
 * must see. The machine itself lives in a worker (machine-client.ts); serial bytes and
 * frames go straight to their components and never through this store.
 */
import { create } from 'zustand';
import { checkManifest, type ImageEntry, type ImageManifest } from '../../images/manifest.ts';
import { checkMedium, firmwarePaths, planImage, type MediumRole } from '../emulator/machine/image-config.ts';
import type { BootRequest, DevicePathName, DevicePathState, FromWorker, IommuView, MachineStatus, MediumFile, PciFunctionInfo, StatsShare } from '../worker/protocol.ts';
import { client } from './machine-client.ts';
import { fetchBytes, readFileBytes } from './load.ts';
import { onTick } from './tick.ts';
import { machineOptions } from './machine-options.ts';
import { uplinkSetting } from './network-settings.ts';
import { onNetworkMessage } from './network-data.ts';


/**
 * `?deterministic=1` in the page's address: every boot (a chosen guest or dropped files)
 * runs on instruction-count time, as the full-boot browser tests do; the default is wall-clock.
 */
function deterministicByDefault(): boolean {
  return typeof location !== 'undefined' && new URLSearchParams(location.search).get('deterministic') === '1';
}

export type ManifestStatus =
  | { kind: 'loading' }
  | { kind: 'ready'; manifest: ImageManifest }
  | { kind: 'missing'; message: string };

export type Phase = MachineStatus['phase'] | 'loading';

export interface Notice {
  id: number;
  kind: 'error' | 'info';
  message: string;
  hint?: string;
}

export interface LoadProgress {
  what: string;
  loaded: number;
  total: number;
}

/** What the worker shared when the machine powered on. */
export interface MachineShare {
  label: string;
  memoryMiB: number;
  deterministic: boolean;
  stats: StatsShare;
  ram: SharedArrayBuffer | null;
  vram: SharedArrayBuffer | null;
  frame: SharedArrayBuffer | null;
}

export interface MachineView {
  functions: PciFunctionInfo[];
  pirq: { link: string; irq: number | null }[];
  iommu: IommuView | null;
}

/** A device changed path (issue 22): the devices panel marks its plot there. */
export interface PathMark {
  name: string;
  path: DevicePathName;
  /** The guest's virtual time at the switch. */
  virtualNs: number;
  /** The page's clock (performance.now(), ms) at the switch. */
  at: number;
}

/** Marks kept: far more than the plots' 30 s show. */
const PATH_MARKS = 256;

/** A user's file and the role it is to play. */
export interface ChosenFile {
  file: File;
  role: MediumRole;
}

interface PageState {
  manifest: ManifestStatus;
  selected: string | undefined;
  phase: Phase;
  progress: LoadProgress | null;
  status: MachineStatus | null;
  share: MachineShare | null;
  /** Counter copies when the page is not cross-origin isolated. */
  statsCopy: Float64Array | null;
  machineView: MachineView | null;
  notices: Notice[];
  resets: number;
  /** Why the guest last reset the machine. */
  lastReset: string | null;
  memoryMiB: number | undefined;
  append: string;
  /** Each switchable device's path, by name, as the worker last said. */
  paths: Record<string, DevicePathState>;
  /** Why this page cannot put a device on the emulated path, or null when it can. */
  emulation: string | null;
  /** Where devices changed path, oldest first. */
  pathMarks: PathMark[];
  loadManifest(): Promise<void>;
  select(name: string): void;
  setMemory(mib: number | undefined): void;
  setAppend(append: string): void;
  powerOn(options?: { deterministic?: boolean; pauseOn?: string }): Promise<void>;
  bootFiles(files: ChosenFile[], options?: { deterministic?: boolean }): Promise<void>;
  powerOff(): void;
  reset(): void;
  pause(): void;
  resume(): void;
  ctrlAltDel(): void;
  /** Move a switchable device to `path` (the monitor's device_path); `resume` a machine its failure paused. */
  setDevicePath(name: string, path: DevicePathName, resume?: boolean): void;
  notify(kind: Notice['kind'], message: string, hint?: string): void;
  dismiss(id: number): void;
}

/** The default guest, as the README promises. */
export const DEFAULT_IMAGE = 'tiny-linux';
/** Kernel command line offered for a dropped kernel. */
export const DEFAULT_APPEND = 'console=tty0 console=ttyS0';
const IMAGES_URL = '/images/';

/**
 * Changes that can wait for the page's tick (tick.ts), so they reach the screen in the
 * same frame as the other panels' updates: a status whose phase is the one shown (the
 * speed readout), the machine view. A new phase shows at once.
 */
let held: Partial<PageState> | null = null;
let stopHeldTick: (() => void) | null = null;
function onNextTick(change: Partial<PageState>): void {
  held = { ...held, ...change };
  stopHeldTick ??= onTick(() => {
    if (held === null) {
      // Nothing came since the last tick (paused, off): no timer while idle.
      stopHeldTick?.();
      stopHeldTick = null;
      return;
    }
    const change = held;
    held = null;
    // A status of a phase left since (a pause that came in between) is stale.
    if (change.status && change.status.phase !== usePage.getState().phase) delete change.status;
    usePage.setState(change);
  });
}

let noticeId = 0;
/** Increments per power-on so a slow load cannot boot after the user moved on. */
let bootToken = 0;

export const usePage = create<PageState>((set, get) => {
  /** Progress of several files against one total: part() for the next file, add() when it is done. */
  const progressOf = (what: string, total: number) => {
    let done = 0;
    set({ progress: { what, loaded: 0, total } });
    return {
      part: () => (loaded: number) => set({ progress: { what, loaded: done + loaded, total: Math.max(total, done + loaded) } }),
      add: (bytes: ArrayBuffer) => {
        done += bytes.byteLength;
        return bytes;
      },
    };
  };
  type Tracker = ReturnType<typeof progressOf>;

  const loadFirmware = async (manifest: ImageManifest, p: Tracker): Promise<{ bios: MediumFile; vgaBios?: MediumFile }> => {
    const fw = firmwarePaths(manifest);
    if (!fw.bios) throw new Error("The firmware image has no bios.bin. Run 'npm run images firmware' and reload the page.");
    const bios = { name: 'bios.bin', bytes: p.add(await fetchBytes(IMAGES_URL + fw.bios, 'the BIOS (bios.bin)', p.part())) };
    const vgaBios = fw.vgaBios ? { name: 'vgabios-stdvga.bin', bytes: p.add(await fetchBytes(IMAGES_URL + fw.vgaBios, 'the VGA BIOS', p.part())) } : undefined;
    return { bios, vgaBios };
  };

  const firmwareSize = (manifest: ImageManifest) =>
    (findFw(manifest)?.files ?? []).filter((f) => f.role === 'bios' || f.path.endsWith('vgabios-stdvga.bin')).reduce((a, f) => a + f.size, 0);

  const send = (request: BootRequest) => {
    const buffers = [request.bios, request.vgaBios, request.kernel, request.initrd, request.cdrom, request.hda, request.fda]
      .filter((f): f is MediumFile => f !== undefined)
      .map((f) => f.bytes);
    held = null; // nothing of the last machine may show on the new one
    set({ progress: null, status: null, share: null, statsCopy: null, machineView: null, resets: 0, lastReset: null, paths: {}, pathMarks: [] });
    client.send({ type: 'boot', request }, buffers);
  };

  client.onMessage = (m: FromWorker) => onWorkerMessage(m, set, get);
  client.onCrash = (message) => {
    set({ phase: 'off', share: null, status: null });
    get().notify('error', `The machine's worker crashed: ${message}.`, 'Power on again to start a fresh machine, or reload the page.');
  };

  return {
    manifest: { kind: 'loading' },
    selected: undefined,
    phase: 'off',
    progress: null,
    status: null,
    share: null,
    statsCopy: null,
    machineView: null,
    notices: [],
    resets: 0,
    lastReset: null,
    memoryMiB: undefined,
    append: DEFAULT_APPEND,
    paths: {},
    emulation: null,
    pathMarks: [],

    async loadManifest() {
      try {
        const res = await fetch('/images/manifest.json', { cache: 'no-cache' });
        if (!res.ok) throw new Error(`the server answered ${res.status}`);
        const manifest: ImageManifest = checkManifest(await res.json());
        const bootable = manifest.images.filter(isBootable);
        const selected = get().selected ?? (bootable.find((i) => i.name === DEFAULT_IMAGE) ?? bootable[0])?.name;
        set({ manifest: { kind: 'ready', manifest }, selected });
      } catch (e) {
        set({ manifest: { kind: 'missing', message: `No guest images: ${(e as Error).message}. Run 'npm run images' and reload.` } });
      }
    },

    select(name) {
      set({ selected: name });
    },
    setMemory(mib) {
      set({ memoryMiB: mib });
    },
    setAppend(append) {
      set({ append });
    },

    async powerOn(options = {}) {
      const { manifest, selected } = get();
      if (manifest.kind !== 'ready' || !selected) {
        get().notify('error', 'There is no guest to boot.', "Run 'npm run images' and reload the page, or drop a bootable file onto the page.");
        return;
      }
      const token = ++bootToken;
      client.send({ type: 'power-off' });
      set({ phase: 'loading' });
      try {
        const image = manifest.manifest.images.find((i) => i.name === selected)!;
        const plan = planImage(manifest.manifest, selected);
        const total = firmwareSize(manifest.manifest) + image.files.filter((f) => Object.values(plan.files).includes(f.path)).reduce((a, f) => a + f.size, 0);
        const p = progressOf(`Loading ${image.title}`, total);
        const fw = await loadFirmware(manifest.manifest, p);
        const request: BootRequest = { label: image.title, ...fw, memoryMiB: get().memoryMiB ?? plan.memoryMiB, append: plan.append, boot: plan.boot, deterministic: options.deterministic ?? deterministicByDefault(), pauseOn: options.pauseOn, ...machineOptions(), network: uplinkSetting() };
        for (const [role, rel] of Object.entries(plan.files) as [MediumRole, string][]) {
          request[role] = { name: rel.split('/').pop()!, bytes: p.add(await fetchBytes(IMAGES_URL + rel, rel, p.part())) };
        }
        if (token !== bootToken) return;
        send(request);
      } catch (e) {
        if (token !== bootToken) return;
        set({ phase: 'off', progress: null });
        get().notify('error', (e as Error).message);
      }
    },

    async bootFiles(files, options = {}) {
      const { manifest } = get();
      if (manifest.kind !== 'ready') {
        get().notify('error', 'The firmware (SeaBIOS) is not available, so no machine can start.', "Run 'npm run images' and reload the page.");
        return;
      }
      const roles = files.map((f) => f.role);
      if (new Set(roles).size !== roles.length) {
        get().notify('error', 'Two files were given the same role.', 'Give each file its own role (one CD, one hard disk, one floppy, one kernel and its initrd).');
        return;
      }
      if (roles.includes('initrd') && !roles.includes('kernel')) {
        get().notify('error', 'An initrd needs a kernel to go with it.', 'Drop the kernel (bzImage) together with the initrd, or choose another role.');
        return;
      }
      const token = ++bootToken;
      client.send({ type: 'power-off' });
      set({ phase: 'loading' });
      const label = files.map((f) => f.file.name).join(' + ');
      try {
        const p = progressOf(`Reading ${label}`, files.reduce((a, f) => a + f.file.size, 0) + firmwareSize(manifest.manifest));
        const request: Partial<BootRequest> = { label, memoryMiB: get().memoryMiB, deterministic: options.deterministic ?? deterministicByDefault(), ...machineOptions(), network: uplinkSetting() };
        for (const { file, role } of files) {
          const bytes = p.add(await readFileBytes(file, p.part()));
          const problem = checkMedium(role, file.name, new Uint8Array(bytes));
          if (problem) throw new Error(problem);
          request[role] = { name: file.name, bytes };
        }
        if (request.kernel) request.append = get().append;
        Object.assign(request, await loadFirmware(manifest.manifest, p));
        if (token !== bootToken) return;
        send(request as BootRequest);
      } catch (e) {
        if (token !== bootToken) return;
        set({ phase: 'off', progress: null });
        get().notify('error', (e as Error).message, 'Choose another file, or another role for it.');
      }
    },

    powerOff() {
      bootToken++;
      client.send({ type: 'power-off' });
      set({ phase: 'off', progress: null });
    },
    reset() {
      client.send({ type: 'reset' });
    },
    pause() {
      client.send({ type: 'pause' });
    },
    resume() {
      client.send({ type: 'resume' });
    },
    ctrlAltDel() {
      client.send({ type: 'ctrl-alt-del' });
    },
    setDevicePath(name, path, resume) {
      const now = get().paths[name];
      if (now) set({ paths: { ...get().paths, [name]: { ...now, note: `switching to ${path}` } } });
      client.send({ type: 'device-path', name, path, resume });
    },
    notify(kind, message, hint) {
      // A message already shown (a guest retrying) moves to the end instead of piling up.
      const others = get().notices.filter((n) => n.message !== message);
      set({ notices: [...others.slice(-4), { id: ++noticeId, kind, message, hint }] });
    },
    dismiss(id) {
      set({ notices: get().notices.filter((n) => n.id !== id) });
    },
  };
});

function findFw(manifest: ImageManifest): ImageEntry | undefined {
  return manifest.images.find((i) => i.name === 'firmware');
}

type Set = (partial: Partial<PageState>) => void;

function onWorkerMessage(m: FromWorker, set: Set, get: () => PageState): void {
  switch (m.type) {
    case 'ready':
      set({ share: { label: m.label, memoryMiB: m.memoryMiB, deterministic: m.deterministic, stats: m.stats, ram: m.ram, vram: m.vram, frame: m.frame } });
      return;
    case 'status': {
      const phase = get().phase === 'loading' && m.status.phase === 'off' ? 'loading' : m.status.phase;
      if (phase === get().phase && get().status !== null) {
        onNextTick({ status: m.status });
        return;
      }
      if (held) delete held.status;
      set({ status: m.status, phase });
      return;
    }
    case 'stats':
      set({ statsCopy: m.counters });
      return;
    case 'reset':
      // Guests reset on purpose (a reboot, SeaBIOS retrying the boot): counted in the status.
      // A triple fault is a crash: the user hears about it.
      set({ resets: get().resets + 1, lastReset: m.reason });
      if (/triple fault/i.test(m.reason)) {
        get().notify('error', `The guest crashed and the machine reset itself: ${m.reason}.`,
          'The machine restarts from the BIOS. Power it off, or try another guest; if a guest that works on QEMU does this, please report it.');
      }
      return;
    case 'machine':
      // The first view shows at once; refreshes wait for the tick.
      if (get().machineView === null) set({ machineView: { functions: m.functions, pirq: m.pirq, iommu: m.iommu ?? null } });
      else onNextTick({ machineView: { functions: m.functions, pirq: m.pirq, iommu: m.iommu ?? null } });
      return;
    case 'log':
      console.info(`[machine] ${m.message}`);
      return;
    case 'error':
      get().notify('error', m.message, m.hint);
      return;
    case 'paths':
      set({ paths: Object.fromEntries(m.devices.map((d) => [d.name, d])), emulation: m.emulation });
      return;
    case 'path-switch':
      // The worker's wall time is on the epoch; the plots use this page's performance.now().
      set({ pathMarks: [...get().pathMarks.slice(1 - PATH_MARKS), { name: m.name, path: m.path, virtualNs: m.virtualNs, at: m.at - performance.timeOrigin }] });
      return;
    case 'network':
    case 'pcap':
      onNetworkMessage(m);
      return;
    case 'serial-out':
    case 'frame':
      return;
  }
}

/** The firmware image is only files for the others; everything else can be booted. */
export function isBootable(image: ImageEntry): boolean {
  const b = image.boot;
  return Boolean(b.kernel || b.cdrom || b.hda || b.fda);
}
