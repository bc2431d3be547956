#!/usr/bin/env node
// spa-knock executable: runs main() and sets the exit code.
import { main, processIo } from './cli.js';

process.exitCode = await main(process.argv.slice(2), processIo());
