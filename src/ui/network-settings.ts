/**
 * The machine's network setting (issue 24): where its LAN leads (network-protocol.ts's
 * UplinkSetting), taken at power-on like the rest of the machine's settings, and kept in
 * the browser's localStorage so a reload restores it. The URLs and the channel name are
 * kept per kind, so switching back and forth does not lose what was typed.
 */
import { create } from 'zustand';
import { checkUplink, DEFAULT_UPLINK, type UplinkKind, type UplinkSetting } from '../worker/network-protocol.ts';

const KEY = 'trapdoor.network';

export interface NetworkSettings {
  kind: UplinkKind;
  wispUrl: string;
  relayUrl: string;
  channel: string;
  setKind(kind: UplinkKind): void;
  setWispUrl(url: string): void;
  setRelayUrl(url: string): void;
  setChannel(name: string): void;
}

type Stored = Pick<NetworkSettings, 'kind' | 'wispUrl' | 'relayUrl' | 'channel'>;

const DEFAULTS: Stored = { kind: DEFAULT_UPLINK.kind, wispUrl: 'wss://', relayUrl: 'wss://', channel: 'trapdoor-lan' };

function storage(): Storage | null {
  try {
    return typeof localStorage === 'undefined' ? null : localStorage;
  } catch {
    return null; // storage blocked (a sandboxed frame, privacy settings): the setting lives as long as the page
  }
}

function load(): Stored {
  try {
    const raw = storage()?.getItem(KEY);
    if (!raw) return DEFAULTS;
    const v = JSON.parse(raw) as Partial<Stored>;
    const text = (x: unknown, d: string) => (typeof x === 'string' ? x : d);
    const kind = checkUplink({ kind: v.kind, url: '', channel: '' })?.kind ?? DEFAULTS.kind;
    return { kind, wispUrl: text(v.wispUrl, DEFAULTS.wispUrl), relayUrl: text(v.relayUrl, DEFAULTS.relayUrl), channel: text(v.channel, DEFAULTS.channel) };
  } catch {
    return DEFAULTS;
  }
}

function save(s: Stored): void {
  try {
    storage()?.setItem(KEY, JSON.stringify({ kind: s.kind, wispUrl: s.wispUrl, relayUrl: s.relayUrl, channel: s.channel }));
  } catch {
    // Full or blocked: the setting still holds for this page.
  }
}

export const useNetworkSettings = create<NetworkSettings>((set, get) => {
  const update = (change: Partial<Stored>) => {
    set(change);
    save(get());
  };
  return {
    ...load(),
    setKind: (kind) => update({ kind }),
    setWispUrl: (wispUrl) => update({ wispUrl }),
    setRelayUrl: (relayUrl) => update({ relayUrl }),
    setChannel: (channel) => update({ channel }),
  };
});

/** The setting as a boot request carries it. */
export function uplinkSetting(s: Stored = useNetworkSettings.getState()): UplinkSetting {
  switch (s.kind) {
    case 'wisp':
      return { kind: 'wisp', url: s.wispUrl.trim() };
    case 'relay':
      return { kind: 'relay', url: s.relayUrl.trim() };
    case 'tab-lan':
      return { kind: 'tab-lan', channel: s.channel.trim() || DEFAULTS.channel };
    default:
      return { kind: s.kind };
  }
}

/** Why a setting cannot be used as it is, in words; null when it can. */
export function uplinkProblem(s: Stored): string | null {
  if (s.kind === 'wisp' || s.kind === 'relay') {
    const url = (s.kind === 'wisp' ? s.wispUrl : s.relayUrl).trim();
    const schemes = s.kind === 'wisp' ? /^(wss?|wisps?):\/\/[^/\s]+/i : /^wss?:\/\/[^/\s]+/i;
    if (!schemes.test(url)) return `The ${s.kind === 'wisp' ? 'Wisp server' : 'relay'}'s address must be a ${s.kind === 'wisp' ? 'ws://, wss:// or wisp://' : 'ws:// or wss://'} URL.`;
  }
  return null;
}
