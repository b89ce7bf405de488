import type { Command } from 'commander';

/**
 * Every `lapse` subcommand lives in its own file in this folder and exports a `register` function;
 * this list is the only place that knows them all.
 */
export function registerCommands(program: Command): void {
  void program;
}
