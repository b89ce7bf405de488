import { crashRecoverySuite } from './support/crash-suite.js';

// One file per backend so the two run in parallel.
crashRecoverySuite('pglite');
