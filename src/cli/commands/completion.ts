import type { Command, Option } from 'commander';
import { LapseError } from '../../domain/errors.js';

/**
 * `lapse completion bash|zsh|fish`: a completion script for the shell, generated from the
 * command tree itself so it never falls behind the commands. It completes subcommands (nested, as
 * `lapse vault onboard`) and each command's long options; arguments (ids, targets) are left to
 * the shell's default (file names), since knowing them would need a call to the server on every
 * <Tab>.
 */
export function registerCompletionCommand(program: Command): void {
  program
    .command('completion')
    .description('print a shell completion script: eval "$(lapse completion bash)" (or zsh, fish)')
    .argument('<shell>', 'bash, zsh or fish')
    .addHelpText(
      'after',
      `
Install:
  bash  echo 'eval "$(lapse completion bash)"' >> ~/.bashrc
  zsh   echo 'eval "$(lapse completion zsh)"' >> ~/.zshrc
  fish  lapse completion fish > ~/.config/fish/completions/lapse.fish`,
    )
    .action((shell: string) => {
      process.stdout.write(completionScript(program, shell));
    });
}

/** The completion script for `shell` covering every command of `program`. */
export function completionScript(program: Command, shell: string): string {
  const tree = commandTree(program);
  if (shell === 'bash') return bashScript(tree);
  if (shell === 'zsh') return zshScript(tree);
  if (shell === 'fish') return fishScript(tree);
  throw new LapseError('validation_failed', `no completion for shell "${shell.slice(0, 40)}"`, {
    where: 'completion <shell>',
    hint: 'Use bash, zsh or fish.',
  });
}

/** One command's path from the root (`['vault', 'onboard']`), its subcommands and long options. */
export interface CompletionNode {
  readonly path: readonly string[];
  readonly description: string;
  readonly subcommands: readonly string[];
  readonly options: readonly { readonly flag: string; readonly description: string; readonly takesValue: boolean }[];
}

/** Every command of the program, depth first, root first (path []). */
export function commandTree(program: Command): CompletionNode[] {
  const nodes: CompletionNode[] = [];
  const visit = (command: Command, path: string[], inherited: readonly Option[]) => {
    const own = command.options.filter((o) => o.long !== undefined);
    const options = [...inherited, ...own];
    const visible = command.commands.filter((c) => !(c as unknown as { _hidden?: boolean })._hidden);
    nodes.push({
      path,
      description: command.description(),
      subcommands: visible.map((c) => c.name()),
      options: [...options.filter((o) => !o.hidden), helpOption].map((o) => ({
        flag: o.long!,
        description: o.description,
        takesValue: o.required || o.optional,
      })),
    });
    // Options of the root (--json) apply to every command; --version only to the root.
    for (const child of visible) visit(child, [...path, child.name()], path.length === 0 ? own.filter((o) => o.long !== '--version') : inherited);
  };
  visit(program, [], []);
  return nodes;
}

const helpOption = { long: '--help', description: 'display help for command', required: false, optional: false, hidden: false } as Option;

/** Single-quoted for sh, with embedded quotes closed and reopened. */
function quote(text: string): string {
  return `'${text.replace(/'/g, `'\\''`)}'`;
}

function oneLine(text: string, max = 90): string {
  const flat = text.replace(/\s+/g, ' ').trim();
  return flat.length > max ? `${flat.slice(0, max - 1)}…` : flat;
}

function bashScript(nodes: readonly CompletionNode[]): string {
  const cases = nodes
    .map((n) => {
      const words = [...n.subcommands, ...n.options.map((o) => o.flag)].join(' ');
      const valued = n.options.filter((o) => o.takesValue).map((o) => o.flag);
      return `    ${quote(n.path.join(' '))}) words=${quote(words)}; valued=${quote(valued.join(' '))} ;;`;
    })
    .join('\n');
  return `# bash completion for lapse (lapse completion bash)
_lapse() {
  local cur="\${COMP_WORDS[COMP_CWORD]}" prev="\${COMP_WORDS[COMP_CWORD-1]}" path="" w words valued candidate i
  # The command path: the words before the cursor that are subcommands (options and their values skipped).
  for ((i = 1; i < COMP_CWORD; i++)); do
    w="\${COMP_WORDS[i]}"
    [[ "$w" == -* ]] && continue
    candidate="\${path:+$path }$w"
    if _lapse_node "$candidate" >/dev/null; then path="$candidate"; fi
  done
  _lapse_node "$path" || return 0
  if [[ " $valued " == *" $prev "* ]]; then COMPREPLY=(); return 0; fi
  COMPREPLY=($(compgen -W "$words" -- "$cur"))
}
_lapse_node() {
  case "$1" in
${cases}
    *) return 1 ;;
  esac
}
complete -o default -F _lapse lapse
`;
}

function zshScript(nodes: readonly CompletionNode[]): string {
  const cases = nodes
    .map((n) => {
      const entries = [
        ...n.subcommands.map((name) => {
          const child = nodes.find((c) => c.path.join(' ') === [...n.path, name].join(' '));
          return `${name.replace(/:/g, '\\:')}:${oneLine(child?.description ?? '')}`;
        }),
        ...n.options.map((o) => `${o.flag}:${oneLine(o.description)}`),
      ];
      return `    ${quote(n.path.join(' '))}) entries=(${entries.map(quote).join(' ')}) ;;`;
    })
    .join('\n');
  return `#compdef lapse
# zsh completion for lapse (lapse completion zsh)
_lapse() {
  local -a entries
  local path_="" w candidate
  local i
  for ((i = 2; i < CURRENT; i++)); do
    w="\${words[i]}"
    [[ "$w" == -* ]] && continue
    candidate="\${path_:+$path_ }$w"
    _lapse_entries "$candidate" && path_="$candidate"
  done
  _lapse_entries "$path_" || return 1
  _describe 'lapse' entries
}
_lapse_entries() {
  case "$1" in
${cases}
    *) return 1 ;;
  esac
  return 0
}
if (( $+functions[compdef] )); then compdef _lapse lapse; fi
`;
}

function fishScript(nodes: readonly CompletionNode[]): string {
  const lines = ['# fish completion for lapse (lapse completion fish)', 'complete -c lapse -f'];
  for (const n of nodes) {
    // fish's __fish_seen_subcommand_from cannot tell nesting levels apart; the path test below can.
    const condition = n.path.length === 0 ? '__fish_use_subcommand' : `__lapse_path_is ${n.path.map(quote).join(' ')}`;
    for (const name of n.subcommands) {
      const child = nodes.find((c) => c.path.join(' ') === [...n.path, name].join(' '));
      lines.push(`complete -c lapse -n ${quote(condition)} -a ${quote(name)} -d ${quote(oneLine(child?.description ?? ''))}`);
    }
    for (const o of n.options) {
      lines.push(`complete -c lapse -n ${quote(condition)} -l ${quote(o.flag.slice(2))}${o.takesValue ? ' -r' : ''} -d ${quote(oneLine(o.description))}`);
    }
  }
  const known = nodes.filter((n) => n.path.length > 0).map((n) => quote(n.path.join(' ')));
  return `${lines.join('\n')}
function __lapse_path_is
  set -l path
  for w in (commandline -opc)[2..-1]
    string match -q -- '-*' $w; and continue
    set -l candidate (string join ' ' $path $w)
    contains -- $candidate ${known.join(' ')}; and set path $path $w
  end
  set -l have (string join ' ' $path)
  test "$have" = "$argv"
end
`;
}
