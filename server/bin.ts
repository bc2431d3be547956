#!/usr/bin/env node
// spa-server executable: runs main() and sets the exit code.
import { main, processServerIo } from './cli.js';

process.exitCode = await main(process.argv.slice(2), processServerIo());
