import { execFileSync } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Command } from 'commander';
import { beforeAll, describe, expect, it } from 'vitest';
import { offline } from '../../../test/support/environment.js';
import { completionScript } from './completion.js';
import { registerCommands } from './index.js';

/**
 * The scripts are run by the real shells (bash, zsh and fish are installed by .ci/run): what a
 * user gets on <Tab> is asked of the shell itself, not read from the generated text.
 */
describe.skipIf(offline())('lapse completion, run by bash, zsh and fish', () => {
  const program = new Command('lapse').option('--json', 'print machine-readable JSON instead of text');
  registerCommands(program);
  const dir = mkdtempSync(join(tmpdir(), 'lapse-completion-'));
  const scripts: Record<string, string> = {};

  beforeAll(() => {
    for (const shell of ['bash', 'zsh', 'fish']) {
      try {
        execFileSync(shell, ['-c', 'true']);
      } catch {
        throw new Error(`${shell} is not installed: install it (apt-get install -y zsh fish, as .ci/run does) or run the offline suite (LAPSE_TEST_OFFLINE=1)`);
      }
      scripts[shell] = join(dir, `lapse.${shell}`);
      writeFileSync(scripts[shell], completionScript(program, shell));
    }
  });

  const run = (shell: string, script: string) => execFileSync(shell, ['-c', script], { encoding: 'utf8', timeout: 20_000 });

  function bash(words: string[]): string[] {
    const array = words.map((w) => `'${w}'`).join(' ');
    const out = run('bash', `source ${scripts.bash}; COMP_WORDS=(${array}); COMP_CWORD=${words.length - 1}; _lapse; printf '%s\\n' "\${COMPREPLY[@]}"`);
    return out.split('\n').filter(Boolean);
  }

  function fish(line: string): string[] {
    return run('fish', `source ${scripts.fish}; complete -C '${line}'`)
      .split('\n')
      .filter(Boolean)
      .map((l) => l.split('\t')[0]!);
  }

  it('bash completes commands, nested subcommands and the options of the command being typed', () => {
    expect(bash(['lapse', 'va'])).toEqual(['vault']);
    expect(bash(['lapse', 'vault', ''])).toEqual(expect.arrayContaining(['ls', 'onboard', '--json', '--help']));
    expect(bash(['lapse', '--json', 'request', '--re'])).toEqual(['--reason']);
    expect(bash(['lapse', 'admin', 'user', 'c'])).toEqual(['create']);
    // After an option that takes a value, nothing is offered (the shell falls back to file names).
    expect(bash(['lapse', 'request', '--reason', ''])).toEqual([]);
    expect(bash(['lapse', 'nonsense', ''])).toEqual(expect.arrayContaining(['serve', 'request']));
  });

  it('fish completes the same, with descriptions', () => {
    expect(fish('lapse va')).toEqual(['vault']);
    expect(fish('lapse vault ')).toEqual(expect.arrayContaining(['ls', 'onboard']));
    expect(fish('lapse request --r')).toEqual(['--reason']);
    expect(fish('lapse admin user c')).toEqual(['create']);
    expect(run('fish', `source ${scripts.fish}; complete -C 'lapse dem'`)).toMatch(/^demo\t.*guided lifecycle/);
  });

  it('zsh parses the script and resolves the entries for a command path', () => {
    run('zsh', `zsh -n ${scripts.zsh}`);
    const entries = run('zsh', `source ${scripts.zsh}; _lapse_entries 'vault' && print -l -- $entries`).split('\n');
    expect(entries).toEqual(expect.arrayContaining([expect.stringMatching(/^onboard:hand Lapse/), expect.stringMatching(/^--json:/)]));
    expect(run('zsh', `source ${scripts.zsh}; _lapse_entries 'no such' || print missing`).trim()).toBe('missing');
  });

  it('covers every command the CLI registers, and refuses an unknown shell', () => {
    const bashText = completionScript(program, 'bash');
    for (const command of program.commands) expect(bashText).toContain(`'${command.name()}')`);
    expect(() => completionScript(program, 'powershell')).toThrow(/no completion for shell "powershell".*|Use bash, zsh or fish/);
  });
});
