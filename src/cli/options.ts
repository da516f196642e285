/**
 * Pieces of the command line shared by src/cli/main.ts and src/cli/workers.ts: the `-i` option
 * (with its default from the environment) and the examples under each `--help`. Light on purpose
 * (commander only): every start of the CLI loads it.
 */
import { Option, type Command } from 'commander';

/** Environment variable naming the inventory file when `-i` is not given. */
export const INVENTORY_ENV = 'AIRFLOW_HA_INVENTORY';

/**
 * `-i, --inventory <file>`: mandatory, unless `env` sets {@link INVENTORY_ENV} (non-empty), which
 * is then its default; an explicit `-i` wins.
 */
export function inventoryOption(env: NodeJS.ProcessEnv): Option {
  const fromEnv = env[INVENTORY_ENV];
  if (!fromEnv) return new Option('-i, --inventory <file>', `inventory YAML file (or $${INVENTORY_ENV})`).makeOptionMandatory();
  return new Option('-i, --inventory <file>', 'inventory YAML file').makeOptionMandatory().default(fromEnv, `$${INVENTORY_ENV}: ${fromEnv}`);
}


/**
 * Adds an "Examples:" section after `cmd`'s help: one line per example, each a whole command line
 * starting with `airflow-ha`, optionally followed by `  # what it does`. Returns `cmd`.
 */
export function withExamples<C extends Command>(cmd: C, ...examples: readonly string[]): C {
  return cmd.addHelpText('after', `\nExamples:\n${examples.map((e) => `  $ ${e}`).join('\n')}\n`);
}

/**
 * Gives every command of `program` (sub-commands too) that has `--accept-new-host-keys`, i.e. every
 * command that connects, the other SSH options read by src/cli/transport.ts `buildTransport`:
 * `-F, --ssh-config <file>` (as `ssh -F`: `none` reads no file; default `~/.ssh/config` when it
 * exists) and `--known-hosts <file>` (trusted besides the state folder's known_hosts, never written).
 * Returns `program`.
 */
export function addSshOptions(program: Command): Command {
  const visit = (cmd: Command): void => {
    if (cmd.options.some((o) => o.long === '--accept-new-host-keys')) {
      cmd.addOption(new Option('-F, --ssh-config <file>', 'OpenSSH client configuration to read (default ~/.ssh/config when it exists; "none": none)'));
      cmd.addOption(new Option('--known-hosts <file>', 'also trust the host keys of this known_hosts file, e.g. ~/.ssh/known_hosts (read only; a changed key is refused in either)'));
    }
    for (const sub of cmd.commands) visit(sub);
  };
  visit(program);
  return program;
}
