#!/usr/bin/env node
// spa-knock executable: runs main() and exits with its code (client/main.ts, runAndExit).
import { runAndExit } from './main.js';

await runAndExit();
