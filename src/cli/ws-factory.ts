/**
 * The WebSocket factory the emulator's Wisp client and relay uplink take, in Node: the
 * `ws` package (Node 20 has no global WebSocket). The page passes `(url) => new WebSocket(url)`.
 */
import { WebSocket } from 'ws';
import type { WebSocketFactory, WebSocketLike } from '../emulator/net/upstream.ts';

export const nodeWebSocketFactory: WebSocketFactory = (url: string): WebSocketLike => new WebSocket(url);
