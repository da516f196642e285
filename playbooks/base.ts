/** Bootstrap step 1 on its own: the base system of every host (see src/components/base.ts). */
import { baseTasks, hostIdentityTasks } from '../src/components/base.js';
import type { Playbook, Step } from '../src/run/playbook.js';

/**
 * Host identity on every host (name + /etc/hosts block): the first step of each component playbook
 * run on its own. `bootstrap` leaves it out, since its base step does the same and more.
 */
export const identityStep: Step = {
  name: 'host identity',
  hosts: { all: true },
  tasks: ({ inventory, host }) => hostIdentityTasks(inventory, host.name),
};

export const baseStep: Step = {
  name: 'base system',
  hosts: { all: true },
  tasks: ({ inventory, host, facts }) => baseTasks(inventory, host, facts),
};

export const base: Playbook = {
  name: 'base',
  description: 'host identity, /etc/hosts, time zone and sync, base packages, admin account, firewall',
  requiredRoles: [],
  steps: [baseStep],
};
