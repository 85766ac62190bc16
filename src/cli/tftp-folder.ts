/**
 * tftp=DIR in Node: the router's TFTP server reads files of one host folder. A name is
 * resolved inside the folder and refused if it leaves it (../, an absolute path, a link
 * pointing out), as QEMU's tftp_session_find/tftp_read_data do.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import type { TftpFiles } from '../emulator/net/tftp.ts';

/** Largest file served (a TFTP transfer of 512-byte blocks wraps its block number many times past this). */
const MAX_FILE = 512 << 20;

export function folderTftpFiles(dir: string): TftpFiles {
  const root = path.resolve(dir);
  return {
    read(name: string): Uint8Array | null {
      // TFTP names are relative to the server's root; a leading slash is how iPXE and PXE clients often ask.
      const rel = name.replace(/^\/+/, '');
      if (rel === '' || rel.includes('\0')) return null;
      const file = path.resolve(root, rel);
      if (file !== root && !file.startsWith(root + path.sep)) return null;
      try {
        const real = fs.realpathSync(file);
        const realRoot = fs.realpathSync(root);
        if (!real.startsWith(realRoot + path.sep)) return null;
        const st = fs.statSync(real);
        if (!st.isFile() || st.size > MAX_FILE) return null;
        return new Uint8Array(fs.readFileSync(real));
      } catch {
        return null;
      }
    },
  };
}
