/** Bootstrap step 1 on its own: the base system of every host (see src/components/base.ts). */
import { baseTasks } from '../src/components/base.js';
import type { Playbook, Step } from '../src/run/playbook.js';

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
