#!/usr/bin/env node
// spa-server executable: runs main() and sets the exit code.
import { setFlagsFromString } from 'node:v8';

// Keep V8's young generation at its initial size instead of letting it grow to 16 MiB
// semi-spaces: the daemon's allocations are short-lived and small, and loading 10,000 keys
// otherwise leaves ~45 MiB of resident heap behind (bench: RSS with 10,000 keys 136 -> 95 MiB).
// It must be set before the modules below allocate, hence the dynamic import.
setFlagsFromString('--semi-space-growth-factor=1');
const { main, processServerIo } = await import('./cli.js');

process.exitCode = await main(process.argv.slice(2), processServerIo());
