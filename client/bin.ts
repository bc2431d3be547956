#!/usr/bin/env node
// spa-knock executable: runs main() and exits with its code.
import { main, processIo } from './main.js';

// Exit at once: a name lookup still pending (a STUN server's, given up on when discovery's
// time ran out) would otherwise hold the process for the resolver's own timeouts. Writes to
// stdout and stderr are synchronous on Linux for files, pipes and terminals: nothing is lost.
process.exit(await main(process.argv.slice(2), processIo()));
