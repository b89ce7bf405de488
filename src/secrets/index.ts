export { createSealer, loadOrCreateSealer, parseEncryptionKey, ENCRYPTION_KEY_FILE, type Sealer } from './sealer.js';
