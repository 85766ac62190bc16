/**
 * The devices that can change path (bus/device-paths.ts) and how the device model builds
 * its copy of each: the constructor's options as plain data, the machine's calls into the
 * device (forwarded while it is emulated) and the device's callbacks out of it.
 */
import type { SwitchableSpec } from '../bus/device-paths.ts';
import type { UartOptions } from '../devices/uart.ts';
import type { Ne2000 } from '../devices/ne2000.ts';

/** UART register 7, the scratch register: a write changes nothing else (16550A datasheet, "Scratchpad Register"). */
const UART_SCR = 7;

export function uartSpec(opts: UartOptions): SwitchableSpec {
  return {
    kind: 'uart',
    config: { ...opts },
    inbound: ['receive'],
    outbound: ['onTransmit'],
    // Only the scratch register is safe to post without an answer: every other write can raise or clear the interrupt.
    buffered: (key, offset, size) => key === 0 && offset === UART_SCR && size === 1,
  };
}

export function ne2000Spec(nic: Ne2000): SwitchableSpec {
  return {
    kind: 'ne2000',
    // The option ROM stays with the PCI bus, which answers the ROM BAR itself.
    config: { name: nic.name, mac: nic.mac.slice(), model: nic.model, isa: { ...nic.isa } },
    inbound: ['receive'],
    outbound: ['onTransmit'],
  };
}
