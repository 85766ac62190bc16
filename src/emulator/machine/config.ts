/**
 * A PC described as plain data. The CLI builds one from QEMU-style flags, the page from
 * the images manifest or a dropped file; `createMachine` turns it into a running PC.
 */
import type { BlockDevice } from '../devices/block-device.ts';
import type { HostForward } from '../net/user-net.ts';

export type BootDevice = 'a' | 'c' | 'd' | 'n';

export interface MachineConfig {
  /** Guest RAM in MiB (QEMU's -m). */
  memoryMiB: number;
  /** System BIOS image; its size is a multiple of 64 KiB. Mapped to end at 4 GiB, its last 128 KiB also below 1 MiB. */
  bios: Uint8Array;
  /** VGA option ROM (vgabios-stdvga.bin) behind the VGA's ROM BAR. */
  vgaBios?: Uint8Array;
  /** Direct kernel boot: a bzImage or a multiboot v1 kernel, with initrd and command line. */
  kernel?: Uint8Array;
  /**
   * The kernel file's name: a Multiboot kernel's command line starts with it (argv[0]), as
   * GRUB and QEMU pass it; a bzImage's does not.
   */
  kernelName?: string;
  initrd?: Uint8Array;
  append?: string;
  hda?: BlockDevice;
  cdrom?: BlockDevice;
  fda?: BlockDevice;
  /** Boot order as QEMU's -boot: letters from a (floppy), c (disk), d (CD), n (network). */
  boot: string;
  /** Further option ROMs offered to the BIOS through fw_cfg genroms/ (name, bytes). */
  optionRoms?: { name: string; data: Uint8Array }[];
  /** Virtual time from the instruction count: the same inputs give the same output. */
  deterministic: boolean;
  /**
   * Run 32-bit code as translated blocks (cpu/jit; default on). Off, every instruction
   * goes through the interpreter: slower, and the reference the translations are tested against.
   */
  blockCache?: boolean;
  /**
   * iPXE's boot ROM for the PCI NE2000 (Debian's pxe-ne2k_pci.rom), behind the NIC's ROM
   * BAR with its PCI IDs patched in, as QEMU does; SeaBIOS runs it for `boot: 'n'`.
   */
  nicRom?: Uint8Array;
  /** NICs and the networks behind them (QEMU's -nic / -netdev / -device); none when absent. */
  network?: NetworkConfig;
  /**
   * The guest-visible VT-d DMA-remapping unit at 0xFED90000 and its ACPI DMAR table
   * (QEMU's -machine iommu=on / -device intel-iommu; iommu/vtd.ts). Off when absent. A
   * synthetic option: QEMU offers VT-d only on q35.
   */
  iommu?: boolean;
  /** QEMU's educational PCI device (devices/edu.ts; -device edu), a DMA engine for test programs. */
  edu?: boolean;
}

/** A NIC: the RTL8029 on PCI (00:03.0 for the first, as QEMU places it) or the ISA NE2000. */
export interface NicConfig {
  model: 'ne2k_pci' | 'ne2k_isa';
  mac: Uint8Array;
  /** The netdev (LAN) it is plugged into; null for a NIC with no cable. */
  netdev: string | null;
  /** ISA only: I/O base and IRQ (QEMU's ne2k_isa defaults: 0x300, IRQ 9). */
  iobase?: number;
  irq?: number;
  /** Shape the NIC's link to its LAN (not QEMU's: delay, loss, rate; see net/switch.ts). */
  shape?: { delayNs?: number; loss?: number; bytesPerSecond?: number; seed?: number };
}

/** hostfwd=[tcp|udp]:[hostaddr]:hostport-[guestaddr]:guestport, as the router takes it. */
export type { HostForward };

/** QEMU's -netdev user: the router at 10.0.2.2 with DHCP, DNS, NAT and TFTP. */
export interface UserNetdevConfig {
  kind: 'user';
  id: string;
  restrict: boolean;
  hostfwd: HostForward[];
  /** tftp=DIR: a folder on the host (read through the environment's file access, never by the emulator). */
  tftpDir?: string;
  bootfile?: string;
  hostname?: string;
  /** Names the DNS forwarder answers itself (the only ones when restricted). */
  hosts?: Record<string, string>;
  net?: string;
  host?: string;
  dns?: string;
  dhcpStart?: string;
  /**
   * wisp=URL (Trapdoor's own): the router's TCP and UDP go through this Wisp server
   * instead of the host's sockets (10.0.2.2 is the server's 127.0.0.1; names are resolved
   * by the server). Needs the environment's WebSocket factory.
   */
  wisp?: string;
  /**
   * fetch=URL (Trapdoor's own): HTTP to 10.0.2.2:80 is replayed with fetch() against this
   * origin, as the page does with its own (http-fetch.ts); with wisp= the rest goes there.
   */
  fetch?: string;
}

/** QEMU's -netdev socket: frames over TCP with a 4-byte length, to another emulator. */
export interface SocketNetdevConfig {
  kind: 'socket';
  id: string;
  listen?: { address: string; port: number };
  connect?: { address: string; port: number };
}

/** A LAN with no router or uplink of its own (QEMU's hubport): only the NICs on it. */
export interface HubNetdevConfig {
  kind: 'hub';
  id: string;
}

/**
 * A WebSocket relay (ws-relay.ts): the LAN's frames, one per binary message, to every
 * machine on the relay. Opened by the machine itself when its environment has a
 * WebSocket factory (the page's WebSocket, `ws` in the CLI).
 */
export interface WebSocketNetdevConfig {
  kind: 'websocket';
  id: string;
  /** ws:// or wss:// */
  url: string;
}

export type NetdevConfig = UserNetdevConfig | SocketNetdevConfig | HubNetdevConfig | WebSocketNetdevConfig;

export interface NetworkConfig {
  nics: NicConfig[];
  netdevs: NetdevConfig[];
}

/** What the machine tells whoever runs it. All optional; called synchronously from the run loop. */
export interface MachineEvents {
  /** A byte transmitted by COM1 (index 0) or COM2 (index 1). */
  serial?(index: number, byte: number): void;
  /** A byte written to the debug console port 0xE9 (QEMU's -debugcon). */
  debugcon?(byte: number): void;
  /** A byte of SeaBIOS's log (port 0x402). */
  biosLog?(byte: number): void;
  /** The guest wrote `value` to port 0xF4 (QEMU's isa-debug-exit): exit status (value << 1) | 1. */
  debugExit?(value: number): void;
  /** The machine reset itself (triple fault, keyboard controller or port 0xCF9 reset); `reason` says why. */
  reset?(reason: string): void;
  /** A diagnostic for the user (unsupported device feature, bad guest value); already rate-limited. */
  log?(message: string): void;
}
