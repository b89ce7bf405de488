import { AuthService } from '../../src/auth/index.js';
import type { Engine } from '../../src/engine/index.js';

/** The auth service `lapse serve` builds beside the engine, over the same database and sealer. */
export function authFor(engine: Engine): AuthService {
  return new AuthService(engine.store.db, engine.sealer);
}
