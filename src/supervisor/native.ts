// The main thread's handle on the native addon, loaded once at start-up,
// before anything could delete its file (switch-root empties the initrd).
import { loadAddon } from '../ipc/addon';

export const addon = loadAddon();
