import { crashRecoverySuite } from './support/crash-suite.js';
import { gcpCrashTargets } from './support/crash-targets.js';

// A cloud connector through every crash point: Lapse processes talk to a fake Cloud Resource
// Manager in this process (no external service, so it runs offline too).
crashRecoverySuite('pglite', gcpCrashTargets());
