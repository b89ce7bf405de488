import { describe } from 'vitest';
import { crashRecoverySuite } from './support/crash-suite.js';
import { offline } from './support/environment.js';

// One file per backend so the two run in parallel; `npm run test:offline` leaves the server out.
if (offline()) describe.skip('kill -9 recovery [postgres] (offline run)', () => {});
else crashRecoverySuite('postgres');
